"""A stand-in for the `callrec` CLI, so install.sh's --dev and --run steps are tested quickly.

It behaves like the real commands as far as install.sh can see: `prompts generate` writes WAVs,
`sim line` links a pty at board.serial_port, `run` answers HTTP on web.host:web.port,
`setup-code` prints a code, `sim demo` runs until stopped. Every long-running command writes
<runtime_dir>/stub-<name>.pid, so a test can check that install.sh stopped it.
STUB_CALLREC_FAIL=<name> makes that command exit with status 3 at once.
"""

from __future__ import annotations

import http.server
import os
import signal
import sys
import threading
import tomllib
import wave
from pathlib import Path
from types import FrameType


def _config(argv: list[str]) -> dict:
    path = argv[argv.index("--config") + 1]
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def _write_pid(cfg: dict, name: str) -> Path:
    pid_file = Path(cfg["runtime_dir"]) / f"stub-{name}.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    return pid_file


def _until_terminated(cleanup: list[Path]) -> None:
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    while not stop.wait(0.05):
        pass
    for path in cleanup:
        path.unlink(missing_ok=True)


def _prompts(directory: str) -> None:
    for stem in ("fr", "en"):
        with wave.open(os.path.join(directory, f"{stem}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\0\0" * 800)


def _sim_line(cfg: dict) -> None:
    pid_file = _write_pid(cfg, "sim-line")
    controller, device = os.openpty()
    link = Path(cfg["board"]["serial_port"])
    link.unlink(missing_ok=True)
    link.symlink_to(os.ttyname(device))
    _until_terminated([link, pid_file])
    os.close(controller)
    os.close(device)


def _run(cfg: dict) -> None:
    pid_file = _write_pid(cfg, "run")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((cfg["web"]["host"], cfg["web"]["port"]), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _until_terminated([pid_file])
    server.shutdown()
    server.server_close()


def main(argv: list[str]) -> int:
    words = [a for a in argv if not a.startswith("-")]
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: callrec {run,sim,prompts,setup-code,user} ... (test stub)")
        return 0
    name = "-".join(words[:2]) if words[0] in ("sim", "prompts") else words[0]
    if os.environ.get("STUB_CALLREC_FAIL") == name:
        print(f"stub: {name} fails as asked", file=sys.stderr)
        return 3
    if name == "prompts-generate":
        _prompts(words[2])
    elif name == "sim-line":
        _sim_line(_config(argv))
    elif name == "run":
        _run(_config(argv))
    elif name == "setup-code":
        print("STUB-SETUP-CODE")
    elif name == "sim-demo":
        cfg = _config(argv)
        pid_file = _write_pid(cfg, "sim-demo")
        print("stub demo caller: placing calls", flush=True)
        _until_terminated([pid_file])
    else:
        print(f"stub: unknown command {argv}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
