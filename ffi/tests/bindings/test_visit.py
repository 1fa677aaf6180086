"""A whole visit through the Python bindings: two in-process phones against a real server,
from enrolment to the server's verified receipt; and refusals arriving as typed exceptions
that name their rule. Each refusal names the actor it stops (THREATS.md)."""

import array
import math
import os
import struct
import sys
import zlib

import pytest

from conftest import co_sign

import tandem

PHOTOS = os.environ["TANDEM_FIXTURES"]


def signature_png(width=120, height=40):
    """A payer's signature: a small greyscale PNG made with the standard library."""
    rows = b"".join(
        b"\x00" + bytes(0 if (x + y) % 7 == 0 else 255 for x in range(width))
        for y in range(height)
    )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def tone_chunk(samples=320, start=0):
    """20 ms of a 16 kHz tone, as 16-bit little-endian PCM (what AudioRecord gives)."""
    pcm = array.array(
        "h", (int(math.sin((start + i) * 0.05) * 8000) for i in range(samples))
    )
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm.tobytes()


def assigned_visit(team, manager, server, case_index):
    """The manager approves a visit to a demo case for the team; both phones sync; both
    stand 10 m from the approved address. Returns the visit id."""
    lead, partner = team["lead"], team["partner"]
    case = manager.cases()[case_index]
    visit = manager.approve_visit(
        case["id"], [lead.identity.agent_id, partner.identity.agent_id]
    )
    for agent in (lead, partner):
        round_ = agent.phone.sync_now(team["link"], None, None)
        assert visit in [v.id for v in agent.phone.visits()], round_
    address = lead.phone.case_of(visit).addresses[0]
    lead.location.stand_at(address.lat_e7, address.lon_e7, north_m=10)
    partner.location.stand_at(address.lat_e7, address.lon_e7, north_m=15)
    return visit


class Progress(tandem.SyncProgress):
    def __init__(self):
        self.calls = []

    def on_progress(self, done, total):
        self.calls.append((done, total))


def test_a_full_visit_reaches_the_server_and_is_acknowledged(team, manager, server):
    lead, partner, clock, link = team["lead"], team["partner"], team["clock"], team["link"]
    visit = assigned_visit(team, manager, server, 0)
    case = lead.phone.case_of(visit)
    assert case.card_masked.startswith("**** **** **** ")
    assert case.debtor_id_masked.count("*") >= 10

    summary, done = co_sign(lead, partner, lead.phone.begin_check_in(visit, None))
    assert summary.purpose == tandem.CoSignPurpose.CHECK_IN
    assert summary.visit_id == visit
    assert summary.lead_agent == lead.identity.agent_id
    assert isinstance(done, tandem.Completion.CHECKED_IN), done
    assert lead.phone.visit(visit).state == tandem.VisitState.CHECKED_IN

    # The platform recorder hands 20 ms chunks: 3 s of audio.
    lead.phone.start_audio(visit, 16_000)
    for i in range(150):
        lead.phone.push_audio(visit, tone_chunk(start=i * 320))
    last_segment = lead.phone.stop_audio(visit)
    assert last_segment is not None and len(last_segment) == 64

    with open(os.path.join(PHOTOS, "gps-DSCN0010.jpg"), "rb") as f:
        photo = lead.phone.capture_photo(visit, f.read(), False)
    assert len(photo.original) == 64 and photo.recorded.kind == "photo"

    lead.phone.record(
        visit, tandem.VisitAction.IDENTITY_CONFIRMED(person=tandem.PersonMet.DEBTOR)
    )
    note = lead.phone.add_note(visit, "债务人在家，同意下周还款。")
    assert note.kind == "note" and note.anchored

    receipt = tandem.ReceiptInput(
        payer_role=tandem.PersonMet.DEBTOR,
        payer_name="张三",
        amount_fen=50_000,
        method=tandem.PaymentMethod.CASH,
        payer_signature_png=signature_png(),
    )
    summary, done = co_sign(lead, partner, lead.phone.begin_receipt(visit, receipt))
    assert summary.purpose == tandem.CoSignPurpose.RECEIPT
    assert summary.receipt.amount_fen == 50_000
    assert isinstance(done, tandem.Completion.RECEIPT_ISSUED), done
    [entry] = lead.phone.receipts()
    assert entry.state == tandem.SerialState.ISSUED and entry.visit_id == visit
    png = lead.phone.receipt_png(visit, entry.serial)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")

    clock.advance(120_000)
    _, done = co_sign(lead, partner, lead.phone.begin_check_out(visit))
    assert isinstance(done, tandem.Completion.CHECKED_OUT), done
    _, done = co_sign(lead, partner, lead.phone.begin_seal(visit))
    assert isinstance(done, tandem.Completion.SEALED), done
    assert done.seal.visit_id == visit
    status = lead.phone.sync_status()
    assert (status.pending, status.acknowledged) == (1, 0)

    # The user leaves the sync screen at once: nothing is sent, nothing counts as failed.
    cancel = tandem.CancelToken()
    cancel.cancel()
    with pytest.raises(tandem.TandemError.Cancelled):
        lead.phone.push(link, None, cancel)
    status = lead.phone.sync_status()
    assert (status.pending, status.last_error) == (1, None)

    progress = Progress()
    round_ = lead.phone.sync_now(link, progress, tandem.CancelToken())
    assert round_.pushed.acknowledged == 1, round_
    assert round_.purged_visits == 1
    assert progress.calls and progress.calls[-1][0] == progress.calls[-1][1]
    status = lead.phone.sync_status()
    assert (status.pending, status.acknowledged, status.quarantined) == (0, 1, 0)
    assert lead.phone.visit(visit).state == tandem.VisitState.PURGED


def test_refusals_arrive_as_typed_exceptions_naming_the_rule(team, manager, server):
    lead, partner = team["lead"], team["partner"]
    visit = assigned_visit(team, manager, server, 1)

    # A lone agent: the lead's own phone cannot answer its challenge.
    shown = lead.phone.begin_check_in(visit, None)
    with pytest.raises(tandem.TandemError.Refused) as refused:
        lead.phone.review_challenge(shown)
    assert refused.value.rule == "V03"

    # An agent faking presence: no fix at all, then a mocked one.
    lead.location.fix = None
    # The visit screen shows it before anyone tries: the rule state names V05 as a block.
    blocks = [v.rule for v in lead.phone.rules(visit).check_in_now
              if v.outcome == tandem.Outcome.BLOCK]
    assert blocks == ["V05"], blocks
    with pytest.raises(tandem.TandemError.Refused) as refused:
        lead.phone.begin_check_in(visit, None)
    assert refused.value.rule == "V05"
    address = lead.phone.case_of(visit).addresses[0]
    lead.location.stand_at(address.lat_e7, address.lon_e7, mock=True)
    with pytest.raises(tandem.TandemError.Refused) as refused:
        co_sign(lead, partner, lead.phone.begin_check_in(visit, None))
    assert refused.value.rule == "V05"

    # Anyone sending bad input: not a photo, an odd PCM chunk, a made-up visit id.
    lead.location.stand_at(address.lat_e7, address.lon_e7, north_m=10)
    assert lead.phone.rules(visit).check_in_now == []
    co_sign(lead, partner, lead.phone.begin_check_in(visit, None))
    with pytest.raises(tandem.TandemError.Invalid):
        lead.phone.capture_photo(visit, b"not a photo at all", False)
    lead.phone.start_audio(visit, 16_000)
    with pytest.raises(tandem.TandemError.Invalid):
        lead.phone.push_audio(visit, b"\x01\x02\x03")
    lead.phone.stop_audio(visit)
    with pytest.raises(tandem.TandemError.Invalid):
        lead.phone.visit("not-a-visit-id")
    assert lead.phone.visit(visit).state == tandem.VisitState.CHECKED_IN


def test_a_phone_never_enrolled_says_so(tmp_path, team):
    from conftest import Agent

    fresh = Agent(tmp_path / "fresh", team["clock"])
    with pytest.raises(tandem.TandemError.NotEnrolled):
        fresh.phone.identity()
    assert fresh.phone.sync_status().enrolled is False
