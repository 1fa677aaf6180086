"""The reports' XLSX download, opened with openpyxl and checked cell by cell against the
server's own database.

Real receipts: two `tandem field` phones make a visit with three cash receipts (one payer's
name a spreadsheet formula) against `tandem serve --demo` with its clock five days back;
the server is started again on the same data at today's 10:00 in Shanghai (its deposit
check flags the receipts overdue), one receipt is marked deposited through the console's
form, and the phones make today's visit with one receipt. The workbook of the past week
must then hold, sheet by sheet, exactly what the SQLite database says: numbers as numbers
with a yuan format, days and times as dates in the bank's zone, and text that a
spreadsheet would run as a formula written as plain text (THREATS.md: a web attacker
injecting formulas into a downloaded spreadsheet).

Run by scripts/test-all (`python3 -m pytest server/tests/python`); needs the `tandem`
binary (TANDEM_BIN, else $CARGO_TARGET_DIR/debug/tandem, else target/debug/tandem).
"""

import datetime
import io
import json
import os
import re
import sqlite3
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

ROOT = Path(__file__).resolve().parents[3]
TANDEM = os.environ.get("TANDEM_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "tandem"
)
DAY_MS = 86_400_000
SHANGHAI = ZoneInfo("Asia/Shanghai")
AT_THE_DOOR = "31.2380500,121.4817400,8"
BESIDE_THE_LEAD = "31.2381000,121.4817400,8"
FORMULA = '=HYPERLINK("http://evil.example","点我")'


def ten_today_offset_ms():
    now = int(time.time() * 1000)
    return now - now % DAY_MS + 2 * 3_600_000 - now


class Server:
    """`tandem serve --demo` on a SQLite data folder, its clock shifted by `offset_ms`."""

    def __init__(self, data, offset_ms, users=None, codes=None):
        self.data, self.offset_ms = data, offset_ms
        self.proc = subprocess.Popen(
            [TANDEM, "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", str(data),
             f"--clock-offset-ms={offset_ms}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"RUST_LOG": "warn"},
        )
        self.users, self.codes = users or {}, codes or []
        section = ""
        deadline = time.time() + 60
        while True:
            assert time.time() < deadline, "tandem serve did not start in 60 s"
            line = self.proc.stdout.readline()
            assert line, "tandem serve exited before listening"
            m = re.match(r"tandem: listening on (\S+)", line.strip())
            if m:
                self.base = m.group(1)
                break
            if line.startswith("Console users"):
                section = "users"
            elif line.startswith("Agent enrollment codes"):
                section = "agents"
            words = line.split()
            if len(words) == 3 and section == "users":
                self.users[words[0]] = words[2]
            elif len(words) == 3 and section == "agents":
                self.codes.append(words[2])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def now_ms(self):
        return int(time.time() * 1000) + self.offset_ms

    def token(self):
        """One session for all calls (the console's form tokens are the session's)."""
        if getattr(self, "_token", None):
            return self._token
        body = json.dumps({"login": "manager", "password": self.users["manager"]}).encode()
        req = urllib.request.Request(f"{self.base}/v1/login", body, {"content-type": "application/json"})
        with urllib.request.urlopen(req) as r:
            self._token = json.load(r)["token"]
        return self._token

    def call(self, method, path, body=None, form=None):
        headers = {"authorization": f"Bearer {self.token()}"}
        data = None
        if body is not None:
            data, headers["content-type"] = json.dumps(body).encode(), "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(f"{self.base}{path}", data, headers, method=method)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def signature_png():
    w, h = 120, 40
    raw = b"".join(b"\x00" + bytes(0 if abs(x / 3 - y) < 1.5 else 255 for x in range(w)) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Phone:
    def __init__(self, folder):
        self.folder = folder

    def args(self, server, args):
        wall = datetime.datetime.fromtimestamp(server.now_ms() / 1000, datetime.timezone.utc).isoformat()
        return [TANDEM, "field", "--dir", str(self.folder), "--server", server.base,
                "--wall-clock", wall, *args, "--json"]

    def ok(self, server, args):
        out = subprocess.run(self.args(server, args), capture_output=True, text=True)
        assert out.returncode == 0, f"tandem field {args}: {out.stderr}"
        return json.loads(out.stdout)


def co_sign(server, lead, partner, work, name, args):
    challenge, reply = work / f"{name}-challenge.txt", work / f"{name}-reply.txt"
    proc = subprocess.Popen(
        lead.args(server, [*args, "--position", AT_THE_DOOR, "--challenge-out", str(challenge),
                           "--reply-in", str(reply), "--timeout", "60"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not challenge.exists():
        assert proc.poll() is None, f"{name}: the lead exited: {proc.stderr.read()}"
        assert time.time() < deadline, f"{name}: no challenge in 30 s"
        time.sleep(0.05)
    partner.ok(server, ["answer", "--in", str(challenge), "--out", str(reply), "--position", BESIDE_THE_LEAD])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"{name}: {err}"
    return json.loads(out)


def visit(server, lead, partner, agents, device, work, payments):
    status, me = server.call("GET", "/v1/me")
    bank = json.loads(me)["bank_ids"][0]
    cases = json.loads(server.call("GET", f"/v1/banks/{bank}/cases")[1])
    case = next(c for c in cases if c["case_ref"] == "PJ-2026-0001")
    now = server.now_ms()
    status, request = server.call("POST", "/v1/visit-requests", {
        "case_id": case["id"], "wanted_from_ms": now, "wanted_until_ms": now + DAY_MS, "purpose": "上门收款"})
    assert status == 201, request
    status, approved = server.call("POST", f"/v1/visit-requests/{json.loads(request)['id']}/approve", {
        "team": [{"agent_id": a} for a in agents], "valid_from_ms": now - 60_000,
        "valid_until_ms": now + 2 * DAY_MS, "letter_number": "WT-2026-118",
        "letter_valid_until_ms": now + 30 * DAY_MS,
        "cash": {"limit_fen": 1_000_000, "currency": "CNY",
                 "designated_account": "6222 0210 0012 3456 789", "methods": ["cash"]}})
    assert status == 201, approved
    visit_id = json.loads(approved)["visit_id"]
    assert server.call("POST", f"/v1/devices/{device}/serial-ranges", {"count": 10})[0] == 201
    lead.ok(server, ["sync"])
    partner.ok(server, ["sync"])
    work.mkdir(parents=True, exist_ok=True)
    png = work / "payer.png"
    png.write_bytes(signature_png())
    co_sign(server, lead, partner, work, "checkin", ["checkin", visit_id])
    lead.ok(server, ["identity", visit_id, "--person", "debtor"])
    for i, (payer, fen) in enumerate(payments):
        co_sign(server, lead, partner, work, f"receipt-{i}", [
            "receipt", visit_id, "--amount-fen", str(fen), "--payer-name", payer, "--payer-signature", str(png)])
    co_sign(server, lead, partner, work, "checkout", ["checkout", visit_id])
    co_sign(server, lead, partner, work, "seal", ["seal", visit_id])
    assert lead.ok(server, ["push"])["pushed"]["acknowledged"] == 1


@pytest.fixture(scope="module")
def world():
    if not Path(TANDEM).exists():
        pytest.fail(f"no tandem binary at {TANDEM}: cargo build -p tandem-server --bin tandem")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = Server(tmp / "data", ten_today_offset_ms() - 5 * DAY_MS)
        try:
            lead, partner = Phone(tmp / "lead"), Phone(tmp / "partner")
            a = lead.ok(server, ["enroll", server.codes[0]])
            p = partner.ok(server, ["enroll", server.codes[1]])
            agents, device = [a["agent_id"], p["agent_id"]], a["device_id"]
            visit(server, lead, partner, agents, device, tmp / "v1",
                  [("林晓虹", 50_000), (FORMULA, 12_345), ("王建国", 2_000)])
        finally:
            server.stop()
        server = Server(tmp / "data", ten_today_offset_ms(), server.users, server.codes)
        try:
            # The deposit check runs when the server starts: wait for its flags.
            db = sqlite3.connect(f"file:{tmp / 'data' / 'tandem.db'}?mode=ro", uri=True)
            for _ in range(100):
                if db.execute("SELECT COUNT(*) FROM receipts WHERE overdue_ms IS NOT NULL").fetchone()[0] == 3:
                    break
                time.sleep(0.1)
            # A late deposit of receipt 3, through the console's own form.
            status, page = server.call("GET", "/receipts")
            csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()
            today = datetime.datetime.fromtimestamp(server.now_ms() / 1000, SHANGHAI).date()
            status, _ = server.call("POST", "/receipts/3/deposit", form={
                "csrf": csrf, "back": "", "reference": "-2+3", "day": today.isoformat(), "amount": "20"})
            assert status == 303
            visit(server, lead, partner, agents, device, tmp / "v2", [("赵六", 123_456)])
            first = today - datetime.timedelta(days=6)
            status, xlsx = server.call(
                "GET", f"/reports/reports.xlsx?from={first.isoformat()}&to={today.isoformat()}")
            assert status == 200
            yield {"book": openpyxl.load_workbook(io.BytesIO(xlsx)), "db": db,
                   "first": first.isoformat(), "last": today.isoformat()}
            db.close()
        finally:
            server.stop()


def local(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, SHANGHAI).replace(tzinfo=None, microsecond=0)


def same_second(a, b):
    return abs((a - b).total_seconds()) < 1


def plain(text):
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def rows(sheet):
    return list(sheet.iter_rows(min_row=2))


def test_the_sheets_are_named_and_headed_in_the_pages_language(world):
    book = world["book"]
    assert book.sheetnames == ["外访结果", "收款与缴存", "逾期收据"]
    assert [c.value for c in book["逾期收据"][1]] == [
        "收据编号", "开具时间", "案件编号", "付款人", "金额", "最迟缴存日", "上报时间"]


def test_collections_per_day_match_the_database_with_numbers_as_numbers(world):
    db, sheet = world["db"], world["book"]["收款与缴存"]
    expected = db.execute(
        "SELECT issued_day, COUNT(*), SUM(amount_fen), "
        "SUM(deposited_ms IS NOT NULL), SUM(CASE WHEN deposited_ms IS NOT NULL THEN amount_fen ELSE 0 END), "
        "SUM(deposited_ms IS NULL AND overdue_ms IS NOT NULL) "
        "FROM receipts r WHERE issued_day BETWEEN ? AND ? "
        "AND NOT EXISTS (SELECT 1 FROM receipt_voids v WHERE v.serial = r.serial AND v.visit_id = r.visit_id) "
        "GROUP BY issued_day ORDER BY issued_day", (world["first"], world["last"])).fetchall()
    assert len(expected) == 2, expected
    got = rows(sheet)
    assert len(got) == len(expected) + 1, "one row per day and the total"
    for row, (day, n, fen, dep_n, dep_fen, late) in zip(got, expected):
        assert row[0].is_date and row[0].value == datetime.datetime.fromisoformat(day)
        assert [row[1].value, row[3].value, row[5].value] == [n, dep_n, late]
        for cell, amount in ((row[2], fen), (row[4], dep_fen)):
            assert cell.data_type == "n" and cell.value == pytest.approx(amount / 100)
            assert "¥" in cell.number_format
    total = got[-1]
    assert total[0].value == "合计" and total[0].data_type == "s"
    assert total[1].value == sum(e[1] for e in expected)
    assert total[2].value == pytest.approx(sum(e[2] for e in expected) / 100)
    assert total[4].value == pytest.approx(sum(e[4] for e in expected) / 100)


def test_overdue_receipts_match_the_database_and_formulas_stay_text(world):
    db, sheet = world["db"], world["book"]["逾期收据"]
    expected = db.execute(
        "SELECT serial, issued_ms, case_ref, payer_name, amount_fen, due_ms, overdue_ms FROM receipts "
        "WHERE deposited_ms IS NULL AND overdue_ms IS NOT NULL AND issued_day BETWEEN ? AND ? "
        "ORDER BY issued_ms, serial", (world["first"], world["last"])).fetchall()
    assert [e[0] for e in expected] == [1, 2]
    got = rows(sheet)
    assert len(got) == len(expected)
    for row, (serial, issued, case_ref, payer, fen, due, flagged) in zip(got, expected):
        assert row[0].value == f"{serial:010d}" and row[0].data_type == "s"
        assert row[1].is_date and same_second(row[1].value, local(issued))
        assert row[2].value == case_ref
        # Never a formula cell: the payer's text as a string, with its `'` guard.
        assert row[3].data_type == "s" and row[3].value == plain(payer)
        assert row[4].data_type == "n" and row[4].value == pytest.approx(fen / 100)
        assert row[5].is_date and row[5].value == datetime.datetime.combine(local(due - 1).date(), datetime.time())
        assert row[6].is_date and same_second(row[6].value, local(flagged))
    assert got[1][3].value == "'" + FORMULA


def test_visits_per_team_match_the_database(world):
    db, sheet = world["db"], world["book"]["外访结果"]
    visits = db.execute(
        "SELECT ap.visit_id, u.display_name, "
        "(SELECT b.status FROM bundles b WHERE b.visit_id = ap.visit_id AND b.status <> 'pending' "
        " ORDER BY b.committed_ms DESC LIMIT 1) "
        "FROM approvals ap JOIN approval_team t ON t.approval_id = ap.id "
        "JOIN agents a ON a.id = t.agent_id JOIN users u ON u.id = a.user_id "
        "ORDER BY ap.visit_id, a.employee_no").fetchall()
    teams = {}
    for visit_id, name, outcome in visits:
        teams.setdefault(visit_id, ([], outcome))[0].append(name)
    counts = {}
    for names, outcome in teams.values():
        line = counts.setdefault(" + ".join(names), [0, 0, 0])
        line[{"accepted": 0, "quarantined": 1}.get(outcome, 2)] += 1
    got = {r[0].value: [r[1].value, r[2].value, r[3].value, r[4].value] for r in rows(sheet)}
    assert got == {team: [*c, sum(c)] for team, c in counts.items()}
    assert list(got.values())[0][0] == 2, "both visits' evidence accepted"
