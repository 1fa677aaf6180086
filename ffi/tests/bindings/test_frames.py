"""QR frames through the Python bindings: core's frame assembler takes what a camera reads,
in any order and with repeats, refuses what is not a Tandem frame, starts over with a newer
message, and hands the whole message over as its payload."""

import hashlib

import pytest

import tandem

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def base45(data):
    out = []
    for i in range(0, len(data), 2):
        pair = data[i : i + 2]
        n = int.from_bytes(pair, "big")
        for _ in range(len(pair) + 1):
            n, digit = divmod(n, 45)
            out.append(BASE45[digit])
    return "".join(out)


def qr_frames(payload):
    """The frames a phone shows for `payload`, 660 bytes a frame (docs/handshake.md)."""
    msg_id = hashlib.sha256(payload).digest()[:8].hex().upper()
    chunks = [payload[i : i + 660] for i in range(0, len(payload), 660)] or [b""]
    n = len(chunks)
    return [f"TH1/{msg_id}/{i}/{n}/{base45(c)}" for i, c in enumerate(chunks, start=1)]


def test_scanned_frames_assemble_into_their_payload():
    message = bytes(i % 256 for i in range(1500))
    frames = qr_frames(message)
    older = qr_frames(bytes([7]) * 700)
    assembler = tandem.FrameAssembler()

    with pytest.raises(tandem.TandemError.Invalid):
        assembler.push("https://example.com/not-ours")
    with pytest.raises(tandem.TandemError.Invalid):
        assembler.push(frames[0].replace("/1/3/", "/4/3/", 1))
    assert assembler.push(older[0]) == tandem.FrameProgress(received=1, total=2, payload=None)

    # The other screen now shows a newer message: it starts over, in any order.
    assert assembler.push(frames[2]) == tandem.FrameProgress(received=1, total=3, payload=None)
    assembler.push(frames[0])
    assert assembler.push(frames[0]).received == 2
    done = assembler.push(frames[1])
    assert (done.received, done.total, done.payload) == (3, 3, message)


def test_a_scanned_payload_that_is_no_handshake_is_invalid(team):
    payload = bytes(range(200))
    with pytest.raises(tandem.TandemError.Invalid):
        team["partner"].phone.review_challenge_payload(payload)
    with pytest.raises(tandem.TandemError.Invalid):
        team["lead"].phone.complete_payload(payload)
