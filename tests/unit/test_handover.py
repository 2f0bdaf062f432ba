"""callrec.handover and the sessions it carries: across a real os.execv, in memory only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from callrec_web.sessions import SessionStore

EXEC_ITSELF = textwrap.dedent("""
    import os, sys
    from callrec import handover
    if len(sys.argv) == 1:
        handover.pass_on("sessions", b'[{"id": "abc"}]')
        os.execv(sys.executable, [sys.executable, __file__, "after"])
    else:
        print(repr(handover.take("sessions")), repr(handover.take("sessions")))
        fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
        print(len([fd for fd in fds if fd > 2 and os.path.exists(f"/proc/self/fd/{fd}")
                   and "memfd:callrec" in os.readlink(f"/proc/self/fd/{fd}")]))
""")


def test_what_is_passed_on_crosses_the_exec_once_and_is_closed(tmp_path) -> None:
    script = tmp_path / "exec_itself.py"
    script.write_text(EXEC_ITSELF)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=30).stdout.splitlines()
    assert out == ["b'[{\"id\": \"abc\"}]' None", "0"]


def test_nothing_passed_and_a_bad_variable_give_none(monkeypatch) -> None:
    from callrec import handover

    monkeypatch.delenv("CALLREC_HANDOVER_SESSIONS", raising=False)
    assert handover.take("sessions") is None
    monkeypatch.setenv("CALLREC_HANDOVER_SESSIONS", "not-a-number")
    assert handover.take("sessions") is None
    monkeypatch.setenv("CALLREC_HANDOVER_SESSIONS", "987")  # no such descriptor
    assert handover.take("sessions") is None


def test_sessions_survive_export_and_restore_with_their_timeouts() -> None:
    now = [1000.0]
    old = SessionStore(idle_s=60, max_s=3600, clock=lambda: now[0])
    alive = old.create("tech")
    stale = old.create("supervisor")
    now[0] += 50
    old.get(alive.id)  # activity: alive's idle time restarts
    data = json.loads(json.dumps(old.export()))
    now[0] += 20  # stale: 70 s idle by now
    new = SessionStore(idle_s=60, max_s=3600, clock=lambda: now[0])
    assert new.restore([*data, {"id": 1}, "junk", {"id": "x", "user": "u"}]) == 1
    kept = new.get(alive.id)
    assert kept is not None and (kept.user, kept.csrf) == ("tech", alive.csrf)
    assert new.get(stale.id) is None
    assert new.restore("not a list") == 0


def test_the_status_remembers_the_last_call_across_a_restart(tmp_path) -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from callrec.config import Config
    from callrec.status import StatusBoard

    def board() -> Any:
        return cast(Any, SimpleNamespace(
            set_fault_led=lambda on: None, recording_led=False,
            mcu=SimpleNamespace(connected=True, version="1"),
            audio=SimpleNamespace(is_open=True)))

    old = StatusBoard(Config(runtime_dir=str(tmp_path)), board())
    old.call_finished("recorded", "out")
    old.recording_done({"id": "20261129T100000Z-0123abcd"})
    memory = json.loads(json.dumps(old.memory()))
    new = StatusBoard(Config(runtime_dir=str(tmp_path)), board())
    new.remember(memory)
    assert new.memory() == old.memory()
    new.remember({"last_call": {"outcome": 3}, "last_recording": None})  # malformed: ignored
    assert new.memory() == old.memory()
