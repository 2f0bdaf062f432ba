"""The `callrec` command: the daemon, status, provisioning, and the line simulator."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from callrec import __version__
from callrec.config import DEFAULT_PATH, Config, ConfigError, PrivacyConfig, load
from callrec.storage.keystore import KeyStoreError

if TYPE_CHECKING:
    from callrec.storage.keystore import KeyStore


def _config(args: argparse.Namespace) -> Any:
    return load(args.config)


def cmd_run(args: argparse.Namespace) -> int:
    from callrec.board.board import BoardError
    from callrec.daemon import Daemon, limit_malloc_arenas

    limit_malloc_arenas()
    from callrec import logring

    logring.install()  # the last log records, for the web UI's diagnostics bundle
    try:
        daemon = Daemon(_config(args))
    except KeyStoreError as exc:  # e.g. the device key is missing but recordings need it
        print(f"callrec: encryption keys: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop())
    try:
        daemon.run()
    except BoardError as exc:
        print(f"callrec: {exc}", file=sys.stderr)
        return 1
    if daemon.restart:
        _restart_in_place()
    return 0


def _restart_in_place() -> None:
    """Run this same command line again in this process (a new configuration, saved from the
    web UI, is applied by a restart): the PID stays, so systemd keeps tracking the service
    (told RELOADING=1; the new process says READY=1) and so does whoever started it."""
    logging.getLogger(__name__).info("restarting: %s", " ".join(sys.orig_argv))
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)  # noqa: S606  # ourselves again, no shell


def cmd_diagnostics(args: argparse.Namespace) -> int:
    """Write the diagnostics bundle (callrec.diagnostics) without the web UI: 0600, atomic."""
    from datetime import UTC, datetime

    from callrec import diagnostics
    from callrec.storage.atomic_json import write_atomic

    now = datetime.now(UTC)
    data = diagnostics.from_cli(_config(args), now)
    out = Path(args.output or diagnostics.bundle_name(now))
    try:
        write_atomic(out.resolve(), data)
    except OSError as exc:
        print(f"callrec: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({len(data)} bytes): no recording, number, name, key or password in it")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        status = json.loads(config.status_path.read_text())
    except FileNotFoundError:
        print(f"callrec is not running (no {config.status_path})", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(status, indent=1))
        return 0 if status.get("running") else 3
    if not status.get("running"):
        print(f"callrec is stopped (since {status.get('updated')})")
        return 3
    print(f"line {status['line']}: {status['state']} since {status['since']}")
    print(f"recording: {'yes' if status['recording'] else 'no'}")
    board = status["board"]
    print(
        f"board: {board['backend']}, MCU {'connected' if board['mcu_connected'] else 'LOST'}"
        f" ({board['mcu_version'] or 'version unknown'}), audio "
        f"{'open' if board['audio_open'] else 'NOT OPEN'}"
    )
    clock = status.get("clock")
    if isinstance(clock, dict):
        print(f"clock: synchronised ({clock.get('source')})" if clock.get("synchronised") else
              f"clock: NOT synchronised ({clock.get('detail') or clock.get('source')}): "
              "recordings are marked \"time unverified\", retention by age waits")
    for fault in status["faults"]:
        print(f"FAULT {fault['name']}: {fault['detail']}")
    return 1 if status["faults"] else 0


def cmd_setup_code(args: argparse.Namespace) -> int:
    from callrec_web.users import UserStore

    config = _config(args)
    if UserStore(config.data_dir / "users.json").has_users():
        print(
            "setup is closed: an account already exists (log in, or ask an administrator)",
            file=sys.stderr,
        )
        return 1
    try:
        print((Path(config.runtime_dir) / "setup-code").read_text().strip())
    except FileNotFoundError:
        print("no setup code yet: is callrec running?", file=sys.stderr)
        return 1
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from callrec_web.users import UserError, UserStore

    if not args.password_stdin:
        print("give the password on standard input with --password-stdin", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n")
    config = _config(args)
    users = UserStore(config.data_dir / "users.json")
    try:
        users.add_user(args.name, password, args.role)
    except UserError as exc:
        print(f"callrec: {exc}", file=sys.stderr)
        return 1
    from callrec.audit import record_from_cli

    record_from_cli(config, "user.add", args.name, details={"roles": sorted(args.role)})
    print(f"user {args.name} added with role(s) {', '.join(args.role)}")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from callrec.storage.open_store import open_store

    store = open_store(_config(args))
    print(f"{store.reindex()} recordings indexed")
    store.close()
    return 0


def cmd_storage_status(args: argparse.Namespace) -> int:
    """Use per volume and days left: from the running daemon (it owns the index), or, when it
    is stopped, computed here (nothing is erased)."""
    config = _config(args)
    storage = None
    try:
        status = json.loads(config.status_path.read_text())
        if status.get("running"):
            storage = status.get("storage")
    except (OSError, ValueError):
        pass
    if storage is None or not storage.get("text"):
        from callrec.housekeeping import Housekeeper
        from callrec.storage.open_store import open_store
        from callrec.storage.retention import describe_policy

        store = open_store(config)
        try:
            hk = Housekeeper(store, config.retention)
            storage = {"volumes": hk.preview(), "text": hk.report_text,
                       "retention": describe_policy(hk.policy), "encrypted": store.keys is not None}
        finally:
            store.close()
    if args.json:
        print(json.dumps(storage, indent=1))
    else:
        print(storage["text"])
        print(f"encryption at rest: {'on' if storage.get('encrypted') else 'OFF'}")
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    """Check the board, the audio path, storage, clock and keys. With the daemon running it
    owns the board: the daemon runs the checks (asked through its API, with a technician's
    or administrator's token); else this process opens the board itself."""
    import urllib.error
    import urllib.request

    from callrec import selftest as st
    from callrec.subject_cli import daemon_running
    from callrec.tls import local_api

    config = _config(args)
    if daemon_running(config):
        token = (Path(args.token_file).read_text().strip() if args.token_file
                 else os.environ.get("CALLREC_TOKEN", ""))
        if not token:
            print("callrec: the daemon is running and owns the board: give an API token of a "
                  "technician or administrator (--token-file, or $CALLREC_TOKEN), use the web "
                  "UI (Self-test), or stop the daemon and run this again.", file=sys.stderr)
            return 3
        base, tls = local_api(config)  # https with the certificate pinned when TLS is on
        req = urllib.request.Request(  # noqa: S310 (our own loopback URL)
            base + "/api/v1/selftest", data=b"", method="POST",
            headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=120, context=tls) as resp:  # noqa: S310
                report = st.Report.from_dict(json.load(resp))
        except urllib.error.HTTPError as exc:
            try:
                why = json.loads(exc.read()).get("error", "")
            except (ValueError, AttributeError):
                why = ""
            print(f"callrec: the daemon refused: {exc.code} {why}".rstrip(), file=sys.stderr)
            return 3
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(f"callrec: the daemon's API cannot be reached: {exc}", file=sys.stderr)
            return 3
    else:
        from callrec.board.board import BoardError
        from callrec.selftest_run import run_direct

        try:
            report = run_direct(config)
        except BoardError as exc:
            print(f"callrec: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(st.format_table(report))
    return report.exit_code


def _existing_keys(config: Config) -> KeyStore | None:
    """The key store as it is (never creates a device key, opens it with the configured
    hardware binding); None, with the reason printed."""
    from callrec.storage.open_store import open_keys

    try:
        return open_keys(config, create_device_key=False)
    except KeyStoreError as exc:
        print(f"callrec: {exc}", file=sys.stderr)
        return None


def cmd_keys_status(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.storage.encrypt:
        print("encryption at rest: OFF (storage.encrypt = false)")
        return 0
    keys = _existing_keys(config)
    if keys is None:
        return 1
    print(f"encryption at rest: on\ndevice key: {keys.device_key_path} "
          f"(fingerprint {keys.device_key_id})\nrecording keys: {sum(1 for _ in keys.ids())}")
    if keys.binding_kind:
        print(f"hardware binding: {keys.binding_kind}, {keys.binding_text}")
    else:
        print(f"hardware binding: NONE. WARNING: {keys.unbound_warning}")
    return 0


def cmd_keys_export(args: argparse.Namespace) -> int:
    """Print the device key for the owner's offline backup (with the warning). It is the
    unwrapped key: the backup must open the recordings on another recorder, or after the
    hardware secret is lost (a dead Pi); hence the warning."""
    keys = _existing_keys(_config(args))
    if keys is None:
        return 1
    print(keys.export_device_key())
    return 0


def cmd_keys_restore(args: argparse.Namespace) -> int:
    """Put back a device key from its backup text (standard input), wrapped by this recorder's
    hardware binding (storage.key_binding); never overwrites one."""
    config = _config(args)
    from callrec.storage.key_binding import binding_for
    from callrec.storage.keystore import restore_device_key

    try:
        binding, reason = binding_for(config.storage)
        fingerprint = restore_device_key(sys.stdin.read(), config.storage.device_key_path,
                                         binding)
    except (KeyStoreError, FileExistsError) as exc:
        print(f"callrec: {exc}", file=sys.stderr)
        return 1
    print(f"device key restored (fingerprint {fingerprint}); restart callrec")
    if binding is not None:
        print(f"hardware binding: {binding.kind}, wrapped by {binding.describe()}")
    else:
        print("hardware binding: NONE. WARNING: the device key is NOT bound to this recorder's "
              f"hardware: the SD card read in another computer opens every recording ({reason})")
    return 0


def _audit_for_reading(args: argparse.Namespace) -> Any:
    from callrec.audit import open_audit_for_reading

    journal, why = open_audit_for_reading(_config(args))
    if why:
        print(f"callrec: the access log's seal key cannot be read ({why}): only the hash "
              "chain is checked; run as the service user (sudo -u callrec) to check the seals",
              file=sys.stderr)
    return journal


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the access log's chain and seals: exit 0 when intact, 1 when an entry was
    edited, deleted or reordered (where is printed). Tears from power cuts are not errors."""
    journal = _audit_for_reading(args)
    result = journal.verify()
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
    else:
        print(result.summary())
        try:  # for a copy kept off the box: what a later rollback would have to match
            head = json.loads((journal.directory / "head.json").read_text())
            print(f"head: entry {head['seq']} {head['hash_of_last']}")
        except (OSError, ValueError, KeyError, TypeError):
            pass
        for finding in result.problems + result.tears:
            where = f"{finding.file}:{finding.line}: " if finding.file else ""
            label = "TAMPERED" if finding.kind == "tampered" else "power cut"
            print(f"  {label}: {where}{finding.message}")
    return 0 if result.ok else 1


def cmd_audit_show(args: argparse.Namespace) -> int:
    """The access log, newest first, filtered (no verification: that is `audit verify`)."""
    journal = _audit_for_reading(args)
    targets = [args.target] if args.target else []
    items, total = journal.search(actor=args.actor or "", action=args.action or "",
                                  targets=targets, since=args.since, until=args.until,
                                  limit=args.limit)
    if args.json:
        print(json.dumps({"total": total, "items": items}, indent=1, ensure_ascii=False))
        return 0
    for doc in items:
        reason = f" ({doc['reason']})" if doc.get("reason") else ""
        details = " ".join(f"{k}={v}" for k, v in sorted((doc.get("details") or {}).items()))
        print(f"{doc['seq']:>6} {doc['at']} {doc['actor']} {doc['action']} "
              f"{doc.get('target') or '-'}{reason} {details}".rstrip())
    shown = f"{len(items)} of {total}" if total > len(items) else str(total)
    print(f"{shown} entr{'y' if total == 1 else 'ies'}", file=sys.stderr)
    return 0


def cmd_prompts_generate(args: argparse.Namespace) -> int:
    from callrec.prompts import PromptToolMissing, generate

    refusal_key = args.refusal_key
    if refusal_key is None:  # what the configuration says, if there is one yet
        path = Path(args.config or os.environ.get("CALLREC_CONFIG") or DEFAULT_PATH)
        refusal_key = (load(path).privacy.refusal_key if path.exists()
                       else PrivacyConfig().refusal_key)
    try:
        written = generate(Path(args.directory), overwrite=args.force,
                           refusal_key=refusal_key)
    except PromptToolMissing as exc:
        print(f"callrec: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_sim_line(args: argparse.Namespace) -> int:
    from callrec.sim.line_sim import LineSimulator

    sim = LineSimulator(_config(args))
    signal.signal(signal.SIGTERM, lambda *_: sim.stop())
    signal.signal(signal.SIGINT, lambda *_: sim.stop())
    sim.serve()
    return 0


def cmd_dsp(args: argparse.Namespace) -> int:
    from callrec.dsp_cli import main as dsp_main  # numpy and the decoders, only when needed

    return dsp_main(args)


def _script_from_args(args: argparse.Namespace) -> dict[str, Any]:
    script: dict[str, Any] = {
        "direction": "out" if args.outgoing else "in",
        "number": args.number,
        "name": args.name,
        "digits": args.digits or "",
        "audio": str(Path(args.audio).resolve()) if args.audio else None,
        "answer": not args.no_answer,
        "rings": args.rings,
        "hangup": args.hangup,
        "heard_path": str(Path(args.heard).resolve()) if args.heard else None,
    }
    for key in ("talk_s", "ring_on_s", "ring_off_s", "answer_after_s", "hangup_after_s"):
        value = getattr(args, key)
        if value is not None:
            script[key] = value
    if args.reversal:
        script["reversal_on_answer"] = True
    return script


def cmd_sim_call(args: argparse.Namespace) -> int:
    from callrec.sim.line_sim import request

    reply = request(
        _config(args).board.sim_socket, {"cmd": "call", "call": _script_from_args(args)}
    )
    print(json.dumps(reply, indent=1))
    return 0 if reply.get("ok") else 1


DEMO_LINES = [
    ("in", "0145678912", "DUPONT MARIE", "Bonjour, je vous appelle au sujet de ma commande."),
    ("out", None, None, "Hello, this is the office returning your call about the invoice."),
    ("in", None, None, "Good morning, I would like to book an appointment for next week."),
]


def cmd_sim_demo(args: argparse.Namespace) -> int:
    from callrec.prompts import synthesize
    from callrec.sim.line_sim import request

    config = _config(args)
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        while True:
            direction, number, name, text = DEMO_LINES[n % len(DEMO_LINES)]
            speech = Path(tmp) / f"demo{n % len(DEMO_LINES)}.wav"
            if not speech.exists():
                synthesize(
                    text, "fr" if "Bonjour" in text else "en", speech, config.board.sample_rate
                )
            script = {
                "direction": direction,
                "number": number,
                "name": name,
                "audio": str(speech),
                "rings": 2,
                "answer_after_s": 2.0,
                "reversal_on_answer": True,
            }
            started = time.monotonic()
            try:
                reply = request(config.board.sim_socket, {"cmd": "call", "call": script})
                print(
                    f"demo call {n + 1} ({direction}): "
                    f"{'answered' if reply.get('answered') else reply.get('error')}",
                    flush=True,
                )
            except OSError as exc:
                print(f"demo: line simulator not reachable ({exc}); retrying", file=sys.stderr)
            n += 1
            if args.count and n >= args.count:
                return 0
            time.sleep(max(1.0, args.every - (time.monotonic() - started)))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="callrec", description="Call recorder appliance.")
    p.add_argument("--version", action="version", version=f"callrec {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Any, help_: str, parent: Any = sub) -> argparse.ArgumentParser:
        cmd = parent.add_parser(name, help=help_, description=help_)
        cmd.add_argument(
            "--config",
            help="configuration file (default: $CALLREC_CONFIG or /etc/callrec/callrec.toml)",
        )
        cmd.set_defaults(func=func)
        return cmd

    add("run", cmd_run, "run the recorder daemon and its web UI (foreground)")
    s = add("status", cmd_status, "show the line state and any fault (exit 1 on a fault)")
    s.add_argument("--json", action="store_true", help="print the raw status as JSON")
    t = add("selftest", cmd_selftest, "check the board, MCU, pins, audio path (a test tone "
            "through the announcement relay and back), storage, clock and keys; exit 0 when "
            "nothing failed, 1 when a check failed, 3 when it could not run (a call in "
            "progress, no token)")
    t.add_argument("--json", action="store_true", help="print the report as JSON")
    t.add_argument("--token-file", help="API token file (technician or administrator), when "
                   "the daemon is running (or $CALLREC_TOKEN)")
    add("setup-code", cmd_setup_code, "print the one-time code that the first web login needs")
    add("reindex", cmd_reindex, "rebuild the recordings index from the sidecar files")
    dg = add("diagnostics", cmd_diagnostics, "write the diagnostics bundle for support "
             "(versions, status, self-test, configuration without credentials, logs)")
    dg.add_argument("-o", "--output", help="the file to write (default: "
                    "callrec-diagnostics-<date>.zip here)")
    storage = sub.add_parser("storage", help="recordings storage").add_subparsers(
        dest="storage_command", required=True, metavar="ACTION"
    )
    st = add("status", cmd_storage_status, "use per volume, days left, retention policy", storage)
    st.add_argument("--json", action="store_true", help="print the report as JSON")
    keys = sub.add_parser("keys", help="encryption keys of the recordings").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    add("status", cmd_keys_status, "whether recordings are encrypted; device key fingerprint", keys)
    add("export", cmd_keys_export, "print the device key for an offline backup (keep it safe)",
        keys)
    add("restore", cmd_keys_restore, "restore the device key from its backup (standard input)",
        keys)

    user = sub.add_parser("user", help="manage web UI accounts").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    u = add("add", cmd_user_add, "add an account", user)
    u.add_argument("name")
    u.add_argument(
        "--role",
        action="append",
        required=True,
        choices=["admin", "technician", "supervisor", "privacy_officer"],
        help="role (repeat for several)",
    )
    u.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )

    audit = sub.add_parser("audit", help="the access log (who accessed what, and why)")
    audit_actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    av = add("verify", cmd_audit_verify, "check that no entry was edited, deleted or reordered "
             "(exit 1 if one was)", audit_actions)
    av.add_argument("--json", action="store_true", help="print the result as JSON")
    ash = add("show", cmd_audit_show, "print the access log, newest first", audit_actions)
    ash.add_argument("--since", type=_date, help="from this UTC date (YYYY-MM-DD)")
    ash.add_argument("--until", type=_date, help="to this UTC date, included (YYYY-MM-DD)")
    ash.add_argument("--action", help='an action, or a prefix ending in "." (recording.)')
    ash.add_argument("--actor", help="an account name, system, or cli:<user>")
    ash.add_argument("--target", help="a recording id, account name or pseudonym")
    ash.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    ash.add_argument("--json", action="store_true", help="print the entries as JSON")

    from callrec.subject_cli import add_commands as add_subject_commands

    add_subject_commands(sub, add)  # callrec subject show|export|erase|restrict|rectify|object

    from callrec.tls_cli import add_commands as add_tls_commands

    add_tls_commands(sub, add)  # callrec tls fingerprint|generate

    from callrec.config_cli import add_commands as add_config_commands

    add_config_commands(sub, add)  # callrec config migrate [--check]

    prompts = sub.add_parser("prompts", help="consent announcement prompts").add_subparsers(
        dest="prompts_command", required=True, metavar="ACTION"
    )
    g = prompts.add_parser("generate", help="write the default fr/en prompts with espeak-ng")
    g.add_argument("directory")
    g.add_argument("--force", action="store_true", help="overwrite existing prompts")
    g.add_argument("--config", help="the configuration whose privacy.refusal_key the prompts "
                   "announce (default: $CALLREC_CONFIG or /etc/callrec/callrec.toml, if present)")
    g.add_argument("--refusal-key", help='the key the prompts tell callers to press to refuse '
                   '("" for none); overrides the configuration')
    g.set_defaults(func=cmd_prompts_generate)

    dsp = sub.add_parser("dsp", help="decode DTMF, caller ID or tones from a WAV file (JSON)")
    dsp_actions = dsp.add_subparsers(dest="dsp_command", required=True, metavar="ACTION")
    for name, help_ in (("dtmf", "DTMF digits with their start and end times"),
                        ("callerid", "caller-ID messages (ETSI V.23, Bell 202, DTMF)"),
                        ("tones", "call-progress tones with their cadence")):
        cmd = dsp_actions.add_parser(name, help=help_, description=f"{help_}. Any sample "
                                     "rate, 8/16-bit, mono or stereo WAV; JSON on stdout.")
        cmd.add_argument("file", help="a WAV file")
        cmd.set_defaults(func=cmd_dsp)
        if name == "callerid":
            cmd.add_argument("--standard", choices=["auto", "etsi-v23", "bell202"],
                             default="auto", help="FSK standard to listen for (default: both)")
        if name == "tones":
            cmd.add_argument("--country", choices=["fr", "eu", "us"], default="fr",
                             help="tone plan of the exchange")

    sim = sub.add_parser("sim", help="the simulated line and HAT").add_subparsers(
        dest="sim_command", required=True, metavar="ACTION"
    )
    add("line", cmd_sim_line, "run the line simulator (MCU on a pty, far end on PulseAudio)", sim)
    c = add("call", cmd_sim_call, "place one call on the simulated line", sim)
    c.add_argument("--outgoing", action="store_true", help="the office calls out")
    c.add_argument("--number", help="caller's number (incoming caller ID)")
    c.add_argument("--name", help="caller's name (incoming caller ID)")
    c.add_argument("--digits", help="number dialled by the office (outgoing)")
    c.add_argument("--audio", help="far-end speech: mono 16-bit WAV at the line rate")
    c.add_argument("--talk-s", type=float, dest="talk_s", help="seconds of conversation")
    c.add_argument("--rings", type=int, default=2, help="rings before the office answers")
    c.add_argument("--no-answer", action="store_true", help="nobody answers")
    c.add_argument("--ring-on-s", type=float, dest="ring_on_s")
    c.add_argument("--ring-off-s", type=float, dest="ring_off_s")
    c.add_argument(
        "--answer-after-s",
        type=float,
        dest="answer_after_s",
        help="outgoing: seconds until the far end answers",
    )
    c.add_argument(
        "--reversal",
        action="store_true",
        help="outgoing: the exchange signals the answer with a polarity reversal",
    )
    c.add_argument("--hangup", choices=["office", "caller"], default="office", help="who hangs up")
    c.add_argument(
        "--hangup-after-s",
        type=float,
        dest="hangup_after_s",
        help="hang up this many seconds after the answer",
    )
    c.add_argument("--heard", help="write what the far end heard to this WAV file")
    d = add("demo", cmd_sim_demo, "place a demo call periodically", sim)
    d.add_argument("--every", type=float, default=30.0, help="seconds between calls")
    d.add_argument("--count", type=int, default=0, help="stop after this many calls (0: never)")
    return p


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _log_stream() -> TextIO:
    """Standard error through its own file descriptor: opening the audio device silences fd 2
    for a moment (PortAudio's ALSA probing noise, board/audio.py), and log lines that other
    threads write meanwhile must not vanish with that noise."""
    try:
        return os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    except OSError:
        return sys.stderr


def main(argv: list[str] | None = None) -> int:
    # The DSP's small matrix products are slower with BLAS threads than without, and the
    # appliance has other work for its cores: one thread unless the environment says otherwise.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    if logging.getLogger().handlers:  # configured already (main() called again in-process)
        logging.getLogger().setLevel(level)
    else:
        logging.basicConfig(
            level=level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=_log_stream(),
        )
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"callrec: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyStoreError as exc:  # any command that opens the recordings: a clear reason
        print(f"callrec: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
