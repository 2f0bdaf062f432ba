"""`callrec subject show|export|erase|restrict|rectify|object NUMBER`: requests about a person.

The daemon owns the index while it runs (TinyDB has exactly one writer, and the daemon keeps
its view in memory), so this command never opens the store next to a running daemon:

- daemon stopped: it opens the store itself and acts on it (same code as the web UI:
  `privacy.subjects.Subjects`), writing the request record and the access log
  (`record_from_cli`, actor "cli:<user>");
- daemon running: it asks the daemon, through its JSON API on the configured address, with an
  API token of an account holding subjects.manage (`--token-file`, or $CALLREC_TOKEN); without
  one it refuses and says how to proceed. The daemon then writes the records, as that account.

"Running" is the status file saying so AND the web port answering: a daemon killed hard
leaves a status file behind, and acting on the store must not wait for a reboot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from callrec.config import Config, load
from callrec.tls import local_api

ACTIONS = ("show", "export", "erase", "restrict", "rectify", "object")


_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 (a bind address read, never bound)


def _loopback(config: Config) -> str:
    """Where this machine reaches the daemon's web server."""
    return "127.0.0.1" if config.web.host in _ANY_ADDRESS else config.web.host


def daemon_running(config: Config) -> bool:
    try:
        status = json.loads(config.status_path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(status, dict) or not status.get("running"):
        return False
    host = _loopback(config)
    try:
        with socket.create_connection((host, config.web.port), timeout=1.0):
            return True
    except OSError:
        return False


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        return Path(args.token_file).read_text().strip() or None
    return os.environ.get("CALLREC_TOKEN") or None


def _confirm(args: argparse.Namespace, count: int) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("callrec: erasure needs --yes when not run from a terminal", file=sys.stderr)
        return False
    answer = input(f"Erase {count} recording(s) of this number for good? Type 'erase': ")
    return answer.strip() == "erase"


def _print_show(shown: dict[str, Any]) -> None:
    print(f"person {shown['subject']}: {len(shown['recordings'])} recording(s)"
          f"{', ON the do-not-record list' if shown['on_do_not_record_list'] else ''}")
    for doc in shown["recordings"]:
        flags = " RESTRICTED" if doc.get("restricted") else ""
        print(f"  {doc['id']} {doc.get('started_at') or '-'} {doc.get('direction') or '-'} "
              f"{doc.get('volume') or 'sd'} {doc.get('status') or '-'}{flags}")
    for req in shown["requests"]:
        late = " OVERDUE" if req.get("overdue") else ""
        print(f"  request {req['id']} {req['type']} received {req['received']} due "
              f"{req['due']} {req['status']}{late} {req.get('outcome') or ''}".rstrip())


def _changes(args: argparse.Namespace) -> dict[str, str]:
    wanted = {"caller_number": args.caller_number, "caller_name": args.caller_name,
              "called_number": args.called_number, "notes": args.notes}
    return {k: v for k, v in wanted.items() if v is not None}


# -- daemon stopped: on the store --------------------------------------------------------------
def run_direct(config: Config, args: argparse.Namespace) -> int:
    from callrec.audit import cli_actor, record_from_cli
    from callrec.privacy.donotrecord import DoNotRecord, sealer_for
    from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key
    from callrec.privacy.requests import Request, RequestBook, overdue
    from callrec.privacy.sheet import access_entries, information_sheet, receipt_html
    from callrec.privacy.subjects import Subjects
    from callrec.storage.open_store import open_store

    store = open_store(config)
    try:
        keys = store.keys
        failed: list[str] = []

        def record(action: str, target: str, reason: str, details: dict[str, Any]) -> None:
            if not record_from_cli(config, action, target, reason, details):
                failed.append(action)
                if action in ("subject.export", "recording.restricted_access"):
                    raise SystemExit(1)  # access that cannot be logged does not happen

        book = RequestBook.for_data_dir(config.data_dir, keys)
        dnr_path = config.privacy.do_not_record_path(config.data_dir)
        svc = Subjects(store, book, Pseudonymizer(pseudonym_key(keys, config.data_dir)),
                       lambda: DoNotRecord.load(dnr_path, sealer_for(keys)), record)
        by = cli_actor()
        number = args.number
        if args.action == "show":
            shown = svc.show(number)
            today = datetime.now(UTC).date()
            shown["requests"] = [{**r, "overdue": overdue(Request.from_dict(r), today)}
                                 for r in shown["requests"]]
            if args.json:
                print(json.dumps(shown, indent=1, ensure_ascii=False))
            else:
                _print_show(shown)
        elif args.action == "export":
            from callrec.audit import open_audit

            journal = open_audit(config, keys)

            def sheet(docs: list[dict[str, Any]]) -> str:
                return information_sheet(config.controller, config.retention, docs,
                                         access_entries(journal, [svc.subject(number), *(
                                             d["id"] for d in docs)]),
                                         datetime.now(UTC).isoformat(timespec="seconds"))

            try:
                plan = svc.export_plan(number, sheet, by, args.reason or "")
            except ValueError as exc:
                print(f"callrec: {exc} (--reason)", file=sys.stderr)
                return 1
            out = Path(args.output)
            tmp = out.with_name(f".{out.name}.part")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                for block in plan.iter_bytes():
                    f.write(block)
            tmp.replace(out)
            print(f"wrote {out} ({out.stat().st_size} bytes, "
                  f"{len(svc.recordings(number))} recording(s))")
        elif args.action == "erase":
            count = len(svc.recordings(number))
            if not _confirm(args, count):
                return 1
            result = svc.erase(number, by, args.reason or "")
            receipt = result.as_dict()
            if args.receipt:
                Path(args.receipt).write_text(
                    json.dumps(receipt, indent=1) if args.receipt.endswith(".json")
                    else receipt_html(receipt, config.controller.name))
            print(f"{len(result.erased)} recording(s) erased; request {result.request}; "
                  f"person {result.subject}")
            for warning in result.warnings:
                print(f"note: {warning}")
        elif args.action == "restrict":
            if args.lift:
                for rec_id in args.lift:
                    svc.lift(rec_id, args.reason or "", by)
                print(f"restriction lifted on {len(args.lift)} recording(s)")
            else:
                if not args.reason:
                    print("callrec: a restriction needs --reason", file=sys.stderr)
                    return 2
                done = svc.restrict(number, args.reason, by, args.recording or None)
                print(f"{len(done)} recording(s) restricted")
        elif args.action == "rectify":
            if not args.recording or len(args.recording) != 1:
                print("callrec: rectify needs one --recording ID", file=sys.stderr)
                return 2
            try:
                changed = svc.rectify(args.recording[0], _changes(args), by, args.reason or "")
            except ValueError as exc:
                print(f"callrec: {exc}", file=sys.stderr)
                return 1
            print(f"changed: {', '.join(changed) or 'nothing'}")
        elif args.action == "object":
            added = svc.object(number, by, args.reason or "")
            print("on the do-not-record list" + ("" if added else " (already)"))
        return 1 if failed else 0
    finally:
        store.close()


# -- daemon running: through its API -----------------------------------------------------------
class _Api:
    def __init__(self, config: Config, token: str) -> None:
        base, self.tls = local_api(config)  # https, certificate pinned, when TLS is on
        self.base = base + "/api/v1"
        self.token = token

    def call(self, method: str, path: str, fields: dict[str, Any] | None = None) -> Any:
        data = urlencode(fields or {}, doseq=True).encode() if method == "POST" else None
        req = urllib.request.Request(  # noqa: S310 (our own http:// loopback URL)
            self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/x-www-form-urlencoded"})
        return urllib.request.urlopen(  # noqa: S310 (our own loopback URL)
            req, timeout=600, context=self.tls)


def run_via_api(config: Config, args: argparse.Namespace, token: str) -> int:
    api = _Api(config, token)
    try:
        with api.call("POST", "/subjects", {"number": args.number}) as resp:
            shown = json.load(resp)
        subject = shown["subject"]
        reason = args.reason or ""
        if args.action == "show" and args.json:
            print(json.dumps(shown, indent=1, ensure_ascii=False))
        elif args.action == "show":
            _print_show(shown)
        elif args.action == "export":
            out = Path(args.output)
            with api.call("POST", f"/subjects/{subject}/export", {"reason": reason}) as resp, \
                    open(out, "wb") as f:
                shutil.copyfileobj(resp, f, 64 * 1024)
            print(f"wrote {out} ({out.stat().st_size} bytes)")
        elif args.action == "erase":
            if not _confirm(args, len(shown["recordings"])):
                return 1
            with api.call("POST", f"/subjects/{subject}/erase",
                          {"confirm": "yes", "reason": reason}) as resp:
                receipt = json.load(resp)
            if args.receipt:
                Path(args.receipt).write_text(json.dumps(receipt, indent=1))
            print(f"{len(receipt['erased'])} recording(s) erased; request {receipt['request']}")
        elif args.action == "restrict":
            if args.lift:
                for rec_id in args.lift:
                    api.call("POST", f"/recordings/{rec_id}/unrestrict",
                             {"reason": reason}).close()
                print(f"restriction lifted on {len(args.lift)} recording(s)")
            else:
                with api.call("POST", f"/subjects/{subject}/restrict",
                              {"reason": reason, "recording": args.recording or []}) as resp:
                    print(f"{len(json.load(resp)['restricted'])} recording(s) restricted")
        elif args.action == "rectify":
            if not args.recording or len(args.recording) != 1:
                print("callrec: rectify needs one --recording ID", file=sys.stderr)
                return 2
            with api.call("POST", f"/subjects/{subject}/rectify/{args.recording[0]}",
                          {**_changes(args), "reason": reason}) as resp:
                print(f"changed: {', '.join(json.load(resp)['changed']) or 'nothing'}")
        elif args.action == "object":
            api.call("POST", f"/subjects/{subject}/object", {"reason": reason}).close()
            print("on the do-not-record list")
    except urllib.error.HTTPError as exc:
        try:
            why = json.loads(exc.read()).get("error", "")
        except (ValueError, AttributeError):
            why = ""
        print(f"callrec: the daemon refused: {exc.code} {why}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"callrec: the daemon's API cannot be reached: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_subject(args: argparse.Namespace) -> int:
    config = load(args.config)
    if args.action == "export" and not args.output:
        print("callrec: export needs --output PATH (the ZIP to write)", file=sys.stderr)
        return 2
    if daemon_running(config):
        token = _token(args)
        if token is None:
            print("callrec: the daemon is running and owns the index. Either give an API "
                  "token of an account with the privacy officer's rights (--token-file, or "
                  "$CALLREC_TOKEN), use the web UI (People), or stop the daemon "
                  "(systemctl stop callrec) and run this again.", file=sys.stderr)
            return 3
        return run_via_api(config, args, token)
    return run_direct(config, args)


def add_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """`callrec subject ACTION NUMBER [options]` on the main parser."""
    subject = sub.add_parser("subject", help="requests about a person (GDPR rights)")
    actions = subject.add_subparsers(dest="subject_command", required=True, metavar="ACTION")
    helps = {
        "show": "everything the appliance holds about a number",
        "export": "write the person's ZIP (audio, metadata, information sheet)",
        "erase": "erase every recording of the number (asks for confirmation)",
        "restrict": "restrict the number's recordings (or --lift ID)",
        "rectify": "correct a recording's numbers, name or notes",
        "object": "put the number on the do-not-record list",
    }
    for action in ACTIONS:
        cmd = add(action, cmd_subject, helps[action], actions)
        cmd.set_defaults(action=action)
        cmd.add_argument("number", help="the phone number, any common form")
        cmd.add_argument("--reason", help="why (written to the access log)")
        cmd.add_argument("--token-file", help="API token file, when the daemon is running")
        if action == "show":
            cmd.add_argument("--json", action="store_true", help="print JSON")
        if action == "export":
            cmd.add_argument("--output", "-o", help="the ZIP file to write")
        if action == "erase":
            cmd.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            cmd.add_argument("--receipt", help="write the receipt here (.json or .html)")
        if action in ("restrict", "rectify"):
            cmd.add_argument("--recording", action="append", help="a recording id (repeat)")
        if action == "restrict":
            cmd.add_argument("--lift", action="append", help="lift the restriction of this "
                             "recording id (repeat)")
        if action == "rectify":
            cmd.add_argument("--caller-number")
            cmd.add_argument("--caller-name")
            cmd.add_argument("--called-number")
            cmd.add_argument("--notes")

