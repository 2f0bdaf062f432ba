"""docs/technician-guide.md says only what the software has: its commands, settings, paths,
page names and messages are checked against the code (no process is started).

Conventions of the guide that these tests rely on:
- commands are in ```sh blocks or in inline code starting with "callrec ";
- settings are written `section.key`, `key = value`, `[section]` or in ```toml blocks;
- **bold** is reserved for names the software shows (pages, buttons, headings, self-test items);
- in the troubleshooting table, inline code in the first column quotes a message, with "…"
  for its variable parts, and "Fault `name: detail`" names a status fault by its part name.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "technician-guide.md"
BOOT = REPO / "hw" / "boot" / "config.txt.callrec"

FENCE_RE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.M | re.S)
INLINE_RE = re.compile(r"`([^`\n]+)`")
PLACEHOLDER_RE = re.compile(r"<[^<>\n]+>")
# Adjacent string literals split over lines ("abc "\n    "def"): joined, so that a message
# quoted whole is found whole.
JOIN_RE = re.compile(r"""(["'])\s*\n\s*(?:#[^\n]*\n\s*)*[rRbBfFuU]{0,2}(["'])""")


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The guide without its fenced code blocks."""
    return FENCE_RE.sub("", text)


def blocks(text: str, lang: str) -> list[str]:
    return [body for kind, body in FENCE_RE.findall(text) if kind == lang]


def inline(text: str) -> list[str]:
    return INLINE_RE.findall(prose(text))


def _read(paths: list[Path]) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in paths)


def source_corpus() -> str:
    """What the software can print: its Python, templates, installer and units."""
    files = [*sorted((REPO / "firmware" / "callrec").rglob("*.py")),
             *sorted((REPO / "web" / "callrec_web").rglob("*.py")),
             *sorted((REPO / "web" / "callrec_web" / "templates").glob("*.tpl")),
             REPO / "install.sh"]
    return JOIN_RE.sub("", _read(files))


def path_corpus() -> str:
    """Where the paths the guide names on the box come from."""
    files = [REPO / "install.sh", REPO / "README.md", *sorted((REPO / "hw").rglob("*")),
             *sorted((REPO / "systemd").glob("*")),
             *sorted((REPO / "firmware" / "callrec").rglob("*.py")),
             *sorted((REPO / "web" / "callrec_web").rglob("*.py"))]
    return _read([f for f in files if f.is_file() and f.suffix not in (".wav", ".pyc")])


# -- commands --------------------------------------------------------------------------------
COMMAND_RE = re.compile(r"(?:^|[;&|]\s*|/opt/callrec/bin/|\.venv/bin/)callrec\s+(.*)$")


def commands(text: str) -> list[str]:
    """Every `callrec ...` command line of the guide (arguments after the program name)."""
    found = []
    for body in blocks(text, "sh"):
        for line in body.splitlines():
            line = line.strip()
            # `sudo -u callrec /opt/...` names the user, not the program: only the program counts.
            for m in COMMAND_RE.finditer(line):
                found.append(m.group(1))
    for span in inline(text):
        m = COMMAND_RE.search(span.strip())
        if m:
            found.append(m.group(1))
    return found


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def test_guide_names_callrec_commands() -> None:
    """The guide's commands are found at all (the extraction works)."""
    found = {" ".join(c.split()[:2]) for c in commands(guide())}
    for wanted in ("setup-code", "tls fingerprint", "prompts generate", "keys export",
                   "selftest --token-file", "audit verify", "storage status", "status"):
        assert wanted in found, f"the guide no longer shows `callrec {wanted}`"


@pytest.mark.parametrize("args", sorted(set(commands(guide()))))
def test_every_callrec_command_exists(args: str) -> None:
    from callrec.cli import build_parser

    tokens = shlex.split(PLACEHOLDER_RE.sub("X", args))
    parser = build_parser()
    node, path = parser, []
    while tokens and (sub := _subparsers(node)) is not None and tokens[0] in sub.choices:
        path.append(tokens[0])
        node = sub.choices[tokens.pop(0)]
    assert path, f"`callrec {args}`: no such command"
    if "--help" in tokens or "-h" in tokens:
        return
    try:
        parser.parse_args([*path, *tokens])
    except SystemExit as exc:
        pytest.fail(f"`callrec {args}` is not accepted by the CLI (exit {exc.code})")


# -- configuration -----------------------------------------------------------------------------
def _sections() -> dict[str, set[str]]:
    from callrec.config import Config

    out: dict[str, set[str]] = {}
    for f in dataclasses.fields(Config):
        if isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory):
            out[f.name] = {g.name for g in dataclasses.fields(f.default_factory)}
    return out


DOTTED_RE = re.compile(r"^([a-z]+)\.([a-z_]+)(?:\s*=\s*(.+))?$")
ASSIGN_RE = re.compile(r"^([a-z_]+)\s*=\s*(.+)$")
SECTION_RE = re.compile(r"^\[([a-z]+)\]$")


def test_dotted_keys_and_sections_exist() -> None:
    sections = _sections()
    seen = 0
    for span in inline(guide()):
        span = span.strip()
        if m := SECTION_RE.match(span):
            assert m.group(1) in sections, f"`{span}`: no such section"
            seen += 1
        elif (m := DOTTED_RE.match(span)) and m.group(1) in sections:
            section, key, value = m.groups()
            assert key in sections[section], f"`{span}`: {section} has no key {key}"
            if value is not None:
                from callrec.config import parse

                parse({section: tomllib.loads(f"{key} = {value}")}, "guide")
            seen += 1
        elif (m := ASSIGN_RE.match(span)) and not span.startswith(("console=", "enable_")):
            key, value = m.groups()
            owners = [s for s, keys in sections.items() if key in keys]
            assert owners, f"`{span}`: no section has the key {key}"
            tomllib.loads(span)  # a valid TOML value
            seen += 1
    # The guide does name settings this way (fewer since the web UI's Settings replaced most
    # hand edits: the remaining ones are the SIP line, the privacy keys and the file's names).
    assert seen >= 15


def test_toml_blocks_parse_with_the_daemons_loader() -> None:
    from callrec.config import parse

    found = blocks(guide(), "toml")
    assert len(found) >= 1  # the SIP line's example
    for body in found:
        body = "\n".join(line.strip() for line in body.splitlines())
        parse(tomllib.loads(body), "docs/technician-guide.md")


def test_defaults_the_guide_states() -> None:
    from callrec.config import PrivacyConfig, RetentionConfig, SipConfig, WebConfig

    text = guide()
    assert f"*{RetentionConfig().max_age_days} days*" in text
    assert f"*{PrivacyConfig().audit_retention_days} days*" in text
    assert f"{RetentionConfig().min_free_mb} MB by default" in text
    assert f"(`{PrivacyConfig().refusal_key}` by default)" in text
    assert f"`{PrivacyConfig().privacy_prefix}` by default" in text
    assert f"Every {SipConfig().trunk_keepalive_s:g} seconds" in text
    web = WebConfig()
    assert f"https://callrec.local:{web.tls_port}/" in text
    assert f"http://callrec.local:{web.port}/" in text


def test_boot_lines_are_those_of_the_repository() -> None:
    wanted = [line.strip() for line in BOOT.read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
    shown = [[line.strip() for line in body.splitlines() if line.strip()]
             for body in blocks(guide(), "text")]
    assert wanted in shown, f"the guide's boot lines differ from {BOOT.relative_to(REPO)}"
    assert "console=serial0,115200" in BOOT.read_text() and "console=serial0,115200" in guide()


def installer_text() -> str:
    """install.sh with its fixed settings (PROD_CONFIG=..., at the top) expanded."""
    text = (REPO / "install.sh").read_text()
    values: dict[str, str] = {}
    for name, value in re.findall(r"^([A-Z_]+)=([^\s$(]*(?:\$[A-Z_]+[^\s$(]*)*)(?:\s|$)",
                                  text, re.M):
        values[name] = re.sub(r"\$([A-Z_]+)", lambda m: values.get(m.group(1), m.group(0)),
                              value)
    values["LOG"] = values["PROD_LOG"]  # log_init "$PROD_LOG" in the appliance install
    return re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: values.get(m.group(1), m.group(0)), text)


def test_installer_final_message_matches() -> None:
    """The example of the installer's last lines uses its real sentences."""
    corpus = installer_text()
    example = next(b for b in blocks(guide(), "text") if "callrec is installed" in b)
    for line in example.splitlines():
        # The variable parts (address, fingerprint, code, the checkout) are the example's own.
        fixed = re.split(r"https?://\S+|\b[0-9A-F]{2}(?::[0-9A-F.]{2,3})+|[A-Z0-9]{4}(?:-[A-Z0-9]{4}){2}"
                         r"|\S*<[^<>]+>\S*", line)
        for part in fixed:
            part = part.strip()
            if len(part) >= 8:
                assert part in corpus, f"installer message not found: {part!r}"


# -- paths -------------------------------------------------------------------------------------
REPO_PATH_RE = re.compile(r"(?<![\w/.])((?:hw|systemd|firmware|web|docs|tests|bench)/[\w./-]+"
                          r"|[A-Z]+\.md|install\.sh)")
BOX_PATH_RE = re.compile(r"(?<![\w.:/<])/(?:etc|var|opt|boot|media|run|tmp|dev|usr)(?:/[\w.-]+)*")


def test_repository_paths_exist() -> None:
    paths = {m.rstrip(".") for m in REPO_PATH_RE.findall(guide())}
    assert "hw/PINMAP.md" in paths and "hw/boot/config.txt.callrec" in paths
    for p in sorted(paths):
        assert (REPO / p).exists(), f"{p} is named in the guide but not in the repository"


def test_paths_on_the_box_come_from_the_software() -> None:
    """An absolute path is one the software uses, or a file the guide makes in one of them."""
    corpus = path_corpus()

    def known(path: str) -> bool:  # the whole path, not the start of a longer name
        return re.search(re.escape(path) + r"(?![\w.-])", corpus) is not None

    for p in sorted({m.rstrip(".") for m in BOX_PATH_RE.findall(guide())}):
        assert known(p) or known(str(Path(p).parent)), f"{p}: unknown to the software"


# -- names and messages ----------------------------------------------------------------------
def ui_corpus() -> str:
    return _read([*sorted((REPO / "web" / "callrec_web" / "templates").glob("*.tpl")),
                  *sorted((REPO / "web" / "callrec_web").glob("*.py")),
                  REPO / "firmware" / "callrec" / "selftest.py",
                  REPO / "firmware" / "callrec" / "status.py"])


def test_bold_names_are_shown_by_the_software() -> None:
    corpus = ui_corpus()
    names = set(re.findall(r"\*\*([^*\n]+)\*\*", guide()))
    for page in ("Recordings", "Status", "Users", "Self-test", "People", "Access log",
                 "Account", "Settings", "Announcements", "Who is responsible"):
        assert page in names, f"the guide does not name the page {page}"
    for name in sorted(names):
        assert name in corpus, f"**{name}**: the web UI shows no such name"


def troubleshooting_rows(text: str) -> list[list[str]]:
    section = text.split("## 9. Troubleshooting", 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith(("| What you see", "|---")):
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def _fragments(message: str) -> list[str]:
    return [f.strip() for f in message.split("…") if f.strip()]


def test_troubleshooting_messages_exist() -> None:
    from callrec.status import _PART_NAMES

    corpus = source_corpus()
    part_names = sorted(_PART_NAMES.values(), key=len, reverse=True)
    rows = troubleshooting_rows(guide())
    assert len(rows) >= 25
    faults = set()
    for row in rows:
        assert len(row) == 3, f"a troubleshooting row needs 3 columns: {row}"
        seen, spans = row[0], INLINE_RE.findall(row[0])
        if seen.startswith("Fault"):
            name = next((n for n in part_names if spans and spans[0].startswith(n + ": ")),
                        None)
            assert name, f"{seen}: not a fault name of callrec.status._PART_NAMES"
            faults.add(name)
        for span in spans:
            for name in part_names:
                if seen.startswith("Fault") and span.startswith(name + ": "):
                    span = span[len(name) + 2:]
                    break
            for fragment in _fragments(span):
                assert fragment in corpus, f"message not found in the code: {fragment!r}"
    for wanted in ("HAT microcontroller link", "announcement", "SIP line", "clock",
                   "recordings volume (USB stick)", "line audio device"):
        assert wanted in faults, f"the troubleshooting table lacks the fault {wanted!r}"


def test_the_guide_is_linked() -> None:
    assert "docs/technician-guide.md" in (REPO / "README.md").read_text()
    assert "docs/technician-guide.md" in (REPO / "install.sh").read_text()


# Where each step of the guide that can run without a Pi is exercised (issue 7: "every step of
# it that can run without a Pi is exercised by a test"). Flashing the card, the boot lines and
# the wiring need a Pi and its HAT; the boot lines are checked against hw/boot above.
EXERCISED_BY = {
    "### Boot configuration (once)": ["tests/install/test_technician_guide.py"],
    "## 3. Install the software": ["tests/install/test_install_rootfs.py",
                                   "tests/install/test_install_sh.py",
                                   "tests/install/test_install_tls.py"],
    "## 4. First setup in the browser": ["tests/e2e/test_guide_walk.py",
                                         "tests/e2e/test_announcement_upload.py",
                                         "tests/web/test_web_settings.py"],
    "## 5. A SIP line (optional)": ["tests/e2e/test_sip_calls.py",
                                    "tests/e2e/test_sip_midcall.py"],
    "## 6. Check it": ["tests/e2e/test_guide_walk.py", "tests/e2e/test_selftest_cli.py"],
    "### The USB stick (optional)": ["tests/e2e/test_usb_storage.py"],
    "### How long recordings are kept": ["tests/e2e/test_storage_retention.py"],
    "### The access log": ["tests/web/test_web_audit.py"],
    "### Requests from a person (GDPR)": ["tests/web/test_web_subjects.py"],
    "### Back up the device key": ["tests/unit/test_cli_keys.py"],
    "### Update": ["tests/install/test_install_rootfs.py"],
    "### Remove": ["tests/install/test_install_sh.py"],
    "## 9. Troubleshooting": ["tests/install/test_technician_guide.py"],
}


def test_every_step_that_runs_without_a_pi_has_its_test() -> None:
    text = guide()
    root = Path(__file__).resolve().parents[2]
    for heading, tests in EXERCISED_BY.items():
        assert f"\n{heading}\n" in text, f"the guide has no section {heading!r}"
        for test in tests:
            assert (root / test).is_file(), f"{heading}: {test} is missing"
