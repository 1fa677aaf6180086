"""Fixtures for the Python binding tests: a real `tandem serve --demo` on 127.0.0.1, the
manager's HTTP calls, and two phones (lead and partner) of one team, each with its own
folder, key store, clock and location source implemented in Python.

Environment (set by scripts/test-bindings):
  TANDEM_BIN       the `tandem` server binary
  TANDEM_BINDINGS  the folder holding the generated `tandem.py` and libtandem_ffi.so
  TANDEM_FIXTURES  core's test photos
"""

import datetime
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

sys.path.insert(0, os.environ["TANDEM_BINDINGS"])
import tandem  # noqa: E402  (the generated bindings)

DAY_MS = 86_400_000


def shanghai_ten_oclock_offset_ms():
    """Milliseconds to add to now so that the server's clock reads 10:00 in Shanghai (02:00
    UTC) today, Shanghai's date: inside visiting hours (V04) whenever CI runs."""
    now = datetime.datetime.now(datetime.timezone.utc)
    shanghai_date = (now + datetime.timedelta(hours=8)).date()
    target = datetime.datetime.combine(
        shanghai_date, datetime.time(2, 0), tzinfo=datetime.timezone.utc
    )
    return int((target - now).total_seconds() * 1000)


class DemoServer:
    """`tandem serve --demo` as a child process; the credentials it printed once."""

    def __init__(self, data_dir):
        self.offset_ms = shanghai_ten_oclock_offset_ms()
        self.proc = subprocess.Popen(
            [
                os.environ["TANDEM_BIN"],
                "serve",
                "--demo",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                # One argument: a negative offset must not read as a flag.
                f"--clock-offset-ms={self.offset_ms}",
            ],
            stdout=subprocess.PIPE,
            stderr=open(data_dir / "stderr.log", "w"),
            text=True,
            env={
                **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
                "RUST_LOG": "warn",
            },
        )
        lines = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(l) for l in self.proc.stdout] and None, daemon=True
        ).start()
        self.passwords, self.codes, self.url = {}, [], None
        section = None
        deadline = time.monotonic() + 60
        while self.url is None:
            left = deadline - time.monotonic()
            failed = self.proc.poll() is not None or left <= 0
            assert not failed, "tandem serve did not start: " + (
                data_dir / "stderr.log"
            ).read_text()[-2000:]
            try:
                line = lines.get(timeout=min(left, 1))
            except queue.Empty:
                continue
            if line.startswith("Console users"):
                section = "users"
            elif line.startswith("Agent enrollment codes"):
                section = "agents"
            elif m := re.match(r"tandem: listening on (http://\S+)", line):
                self.url = m.group(1)
            elif line.startswith("  ") and section == "users":
                login, _role, password = line.split()
                self.passwords[login] = password
            elif line.startswith("  ") and section == "agents":
                self.codes.append(line.split()[-1])
        assert "manager" in self.passwords and len(self.codes) >= 2, (
            self.passwords.keys(),
            self.codes,
        )

    def now_ms(self):
        """The server's clock (shifted by the offset)."""
        return int(time.time() * 1000) + self.offset_ms

    def call(self, method, path, body=None, token=None):
        """One JSON request; returns (status, parsed body)."""
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Manager:
    """The manager at the web console, over HTTP."""

    def __init__(self, server):
        self.server = server
        status, login = server.call(
            "POST",
            "/v1/login",
            {"login": "manager", "password": server.passwords["manager"]},
        )
        assert status == 200, login
        self.token = login["token"]
        self.bank_id = login["bank_ids"][0]

    def cases(self):
        status, cases = self.server.call(
            "GET", f"/v1/banks/{self.bank_id}/cases", token=self.token
        )
        assert status == 200, cases
        return sorted(cases, key=lambda c: c["case_ref"])

    def approve_visit(self, case_id, agent_ids, cash=True):
        """Requests and approves a visit for `agent_ids`; returns the visit id."""
        now = self.server.now_ms()
        status, request = self.server.call(
            "POST",
            "/v1/visit-requests",
            {
                "case_id": case_id,
                "wanted_from_ms": now,
                "wanted_until_ms": now + DAY_MS,
                "purpose": "外访",
            },
            token=self.token,
        )
        assert status == 201, request
        body = {
            "team": [{"agent_id": a} for a in agent_ids],
            "valid_from_ms": now - 60_000,
            "valid_until_ms": now + 7 * DAY_MS,
            "letter_number": "WT-1",
            "letter_valid_until_ms": now + 30 * DAY_MS,
        }
        if cash:
            body["cash"] = {
                "limit_fen": 100_000,
                "currency": "CNY",
                "designated_account": "6222 0210 0012 3456 789",
                "methods": ["cash"],
            }
        status, approved = self.server.call(
            "POST", f"/v1/visit-requests/{request['id']}/approve", body, token=self.token
        )
        assert status == 201, approved
        return approved["visit_id"]

    def issue_receipt_numbers(self, device_id, count=5):
        status, answer = self.server.call(
            "POST",
            f"/v1/devices/{device_id}/serial-ranges",
            {"count": count},
            token=self.token,
        )
        assert status == 201, answer


class TestClock(tandem.Clock):
    """The platform clock: real time, plus what a test advances it by."""

    def __init__(self):
        self.advanced_ms = 0
        self.boot = f"pytest-{os.getpid()}"

    def wall_ms(self):
        return int(time.time() * 1000) + self.advanced_ms

    def monotonic_ms(self):
        return int(time.monotonic() * 1000) + self.advanced_ms

    def boot_id(self):
        return self.boot

    def advance(self, ms):
        self.advanced_ms += ms


class TestLocation(tandem.LocationSource):
    """The platform location service: a fix set by the test, or none."""

    def __init__(self):
        self.fix = None

    def current_fix(self):
        return self.fix

    def stand_at(self, lat_e7, lon_e7, north_m=0, mock=False):
        # 1e-7 degree of latitude is about 1.1 cm: 900 units per 10 m.
        self.fix = tandem.LocationFix(
            lat_e7=lat_e7 + north_m * 90,
            lon_e7=lon_e7,
            datum=tandem.Datum.WGS84,
            accuracy_m=8,
            provider=tandem.Provider.GNSS,
            mock=mock,
            taken_at_ms=int(time.time() * 1000),
        )


class Agent:
    """One agent's phone, opened through the bindings."""

    def __init__(self, folder, clock):
        os.makedirs(folder, exist_ok=True)
        self.location = TestLocation()
        self.phone = tandem.TandemPhone.open(
            tandem.PhoneConfig(
                dir=str(folder),
                keystore=tandem.software_key_store(str(folder / "keystore.key")),
                clock=clock,
                location=self.location,
                signer=None,
            )
        )


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = DemoServer(tmp_path_factory.mktemp("server"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def manager(server):
    return Manager(server)


@pytest.fixture(scope="session")
def team(server, manager, tmp_path_factory):
    """Lead and partner phones, enrolled with the demo's first two codes."""
    clock = TestClock()
    folder = tmp_path_factory.mktemp("phones")
    lead, partner = Agent(folder / "lead", clock), Agent(folder / "partner", clock)
    link = tandem.Server(server.url)
    for agent, code in ((lead, server.codes[0]), (partner, server.codes[1])):
        agent.identity = agent.phone.enroll(link, code)
    manager.issue_receipt_numbers(lead.identity.device_id)
    return {"lead": lead, "partner": partner, "clock": clock, "link": link}


def co_sign(lead, partner, frames):
    """What the two shells do with screen and camera: the partner scans and reviews the
    lead's challenge and answers; the lead scans the reply and completes."""
    review = partner.phone.review_challenge(frames)
    reply = partner.phone.answer_challenge(review)
    return review.summary(), lead.phone.complete(reply)
