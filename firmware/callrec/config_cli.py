"""`callrec config migrate [--check]`: bring the configuration file to the current version.

install.sh runs it on every install and upgrade. The decisions are config_migrate.py's (pure);
this module does the file's I/O: a backup of the old text, then an atomic replacement (temp
file in the same folder, fsync, rename, fsync of the folder), because power can be cut at any
instant and a half-written configuration would stop the appliance from starting.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callrec.config import DEFAULT_PATH, ConfigError, parse
from callrec.config_migrate import CURRENT_VERSION, MigrationError, migrate, version_of
from callrec.storage.atomic_json import write_atomic


def write_like(path: Path, data: bytes, like: os.stat_result) -> None:
    """Replace `path` with `data` atomically, with the mode (and, as root, the owner) of
    `like`."""
    owner = (like.st_uid, like.st_gid) if os.geteuid() == 0 else None
    write_atomic(path, data, mode=like.st_mode & 0o7777, owner=owner)


def backup_path(path: Path, version: int) -> Path:
    """callrec.toml.v1.bak, or .v1.bak.2, .3... so that an earlier backup is never replaced."""
    first = path.with_name(f"{path.name}.v{version}.bak")
    candidate, n = first, 1
    while candidate.exists():
        n += 1
        candidate = first.with_name(f"{first.name}.{n}")
    return candidate


def cmd_config_migrate(args: argparse.Namespace) -> int:
    path = Path(args.config or os.environ.get("CALLREC_CONFIG") or DEFAULT_PATH)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        print(f"callrec: {path}: cannot read ({exc.strerror})", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"callrec: {path}: not UTF-8 text", file=sys.stderr)
        return 2
    try:
        # The file's version before, then the migration (which refuses a newer version).
        old_version = version_of(tomllib.loads(text))
        new_text, changes = migrate(text)
        # The result must be a configuration the daemon accepts; an error that was already in
        # the file is named now, before anything is written.
        parse(tomllib.loads(new_text), str(path))
    except tomllib.TOMLDecodeError as exc:
        print(f"callrec: {path}: invalid TOML: {exc}; nothing changed", file=sys.stderr)
        return 2
    except (MigrationError, ConfigError) as exc:
        print(f"callrec: {path}: {exc}; nothing changed", file=sys.stderr)
        return 2
    if not changes:
        print(f"{path}: config_version {old_version}, up to date")
        return 0
    if args.check:
        print(f"{path}: config_version {old_version} would be migrated to {CURRENT_VERSION}:")
        for change in changes:
            print(f"  {change}")
        return 1
    st = path.stat()
    backup = backup_path(path, old_version)
    write_like(backup, raw, st)  # first: the old text is safe before the file changes
    write_like(path, new_text.encode("utf-8"), st)
    print(f"{path}: migrated config_version {old_version} -> {CURRENT_VERSION} "
          f"(the old file is kept as {backup.name}):")
    for change in changes:
        print(f"  {change}")
    return 0


def add_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """`callrec config migrate` on the main parser."""
    config = sub.add_parser("config", help="the configuration file").add_subparsers(
        dest="config_command", required=True, metavar="ACTION")
    m = add("migrate", cmd_config_migrate, "bring the configuration file to the current "
            f"config_version ({CURRENT_VERSION}), keeping its comments; the old file is kept "
            "as <file>.v<version>.bak. Exit 0: up to date or migrated; 1: --check found it "
            "needs migrating; 2: it cannot be migrated (nothing changed)", config)
    m.add_argument("--check", action="store_true", help="only say whether it would be migrated")
