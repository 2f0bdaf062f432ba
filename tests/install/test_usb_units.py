"""The USB stick's system files: systemd/media-callrec.mount and hw/udev/99-callrec-usb.rules."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOUNT = REPO / "systemd" / "media-callrec.mount"
RULES = REPO / "hw" / "udev" / "99-callrec-usb.rules"
SERVICE = REPO / "systemd" / "callrec.service"
INSTALL = REPO / "install.sh"
DEVICE_UNIT = r"dev-disk-by\x2dlabel-CALLREC.device"


def _settings(unit: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of every setting, in order."""
    section, out = "", []
    for line in unit.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.append((section, key, value))
    return out


def _values(key: str) -> list[str]:
    return [v for _, k, v in _settings(MOUNT) if k == key]


def _escape_path(path: str) -> str:
    """systemd's path escaping (systemd-escape --path), for the unit-name check."""
    parts = path.strip("/").split("/")
    out = []
    for part in parts:
        chars = [
            c if (c.isascii() and (c.isalnum() or c in ":_.")) and not (i == 0 and c == ".")
            else "".join(f"\\x{b:02x}" for b in c.encode())
            for i, c in enumerate(part)
        ]
        out.append("".join(chars))
    return "-".join(out) or "-"


# --- the mount unit --------------------------------------------------------------------------


def test_mount_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    copy = tmp_path / MOUNT.name  # verify refuses a mount unit whose name does not fit Where=
    shutil.copy2(MOUNT, copy)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ours = [
        line for line in (result.stdout + result.stderr).splitlines()
        if "callrec" in line or "CALLREC" in line
    ]
    assert result.returncode == 0, result.stdout + result.stderr
    assert ours == [], "\n".join(ours)


def test_mount_unit_name_matches_where() -> None:
    (where,) = _values("Where")
    assert where == "/media/callrec"
    assert MOUNT.name == _escape_path(where) + ".mount"
    if shutil.which("systemd-escape"):
        result = subprocess.run(
            ["systemd-escape", "--path", "--suffix=mount", where],
            capture_output=True, text=True, timeout=30, check=True,
        )
        assert result.stdout.strip() == MOUNT.name
        device = subprocess.run(
            ["systemd-escape", "--path", "--suffix=device", _values("What")[0]],
            capture_output=True, text=True, timeout=30, check=True,
        )
        assert device.stdout.strip() == DEVICE_UNIT


def test_mount_unit_mounts_the_labelled_stick_safely() -> None:
    assert _values("What") == ["/dev/disk/by-label/CALLREC"]
    (options,) = _values("Options")
    opts = options.split(",")
    for required in ("nodev", "nosuid", "noexec", "noatime", "nofail", "errors=remount-ro"):
        assert required in opts
    # One unit serves ext4, vfat and exfat: no option that one of them refuses (uid=, gid=,
    # umask= and flush make ext4, and flush exfat, fail to mount); FAT gets its owner and mask
    # from the mount process instead.
    assert not [o for o in opts if o.split("=")[0] in {"uid", "gid", "umask", "flush", "sync"}]
    assert _values("Group") == ["callrec"]
    assert _values("UMask") == ["0007"]
    assert _values("LazyUnmount") == ["yes"]
    assert "Type" not in {k for _, k, _ in _settings(MOUNT)}  # detected: ext4, vfat or exfat


def test_mount_unit_is_bound_to_the_device() -> None:
    assert DEVICE_UNIT in _values("BindsTo")
    assert DEVICE_UNIT in _values("After")
    fsck = r"systemd-fsck@dev-disk-by\x2dlabel-CALLREC.service"
    assert fsck in _values("Requires") and fsck in _values("After")


def test_nothing_ties_the_daemon_to_the_stick() -> None:
    # The daemon must start and run without the stick: no dependency either way.
    keys = {k for _, k, _ in _settings(MOUNT)}
    assert not keys & {"WantedBy", "RequiredBy", "Before", "PartOf", "UpheldBy"}
    assert "Install" not in {s for s, _, _ in _settings(MOUNT)}
    dependency = re.compile(
        r"^(Requires|Wants|BindsTo|Requisite|PartOf|Upholds|After|Before|RequiresMountsFor)="
    )
    for line in SERVICE.read_text().splitlines():
        if dependency.match(line):
            assert "media-callrec" not in line and "/media/callrec" not in line, line


def test_every_mount_unit_option_has_a_comment_saying_why() -> None:
    previous = ""
    missing = []
    for line in MOUNT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and not previous.startswith("#"):
            missing.append(line)
        previous = line
    assert missing == []


# --- the udev rule ---------------------------------------------------------------------------

TOKEN = re.compile(r'^\s*([A-Z_]+)(\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*$')
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ENV", "ATTRS", "ATTR"}
ASSIGN_KEYS = {"TAG", "ENV", "SYMLINK"}


def _rules() -> list[list[tuple[str, str, str, str]]]:
    """Each rule line as (key, {attribute}, operator, value) tokens."""
    rules = []
    for line in RULES.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert not line.endswith("\\"), "keep each rule on one line"
        tokens = []
        for part in line.split(","):
            m = TOKEN.match(part)
            assert m, f"{line!r}: bad token {part!r}"
            key, _, attr, op, value = m.groups()
            tokens.append((key, attr or "", op, value))
        rules.append(tokens)
    return rules


def test_udev_rule_is_well_formed() -> None:
    rules = _rules()
    assert len(rules) == 1
    for tokens in rules:
        for key, attr, op, _ in tokens:
            if op in ("==", "!="):
                assert key in MATCH_KEYS, key
            else:
                assert key in ASSIGN_KEYS, key
            if key in ("ENV", "ATTR", "ATTRS"):
                assert attr, f"{key} needs {{name}}"
    if (
        shutil.which("udevadm")
        and "verify"
        in subprocess.run(["udevadm", "--help"], capture_output=True, text=True, check=False).stdout
    ):
        result = subprocess.run(
            ["udevadm", "verify", str(RULES)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _env_glob_matches(pattern: str, value: str) -> bool:
    from fnmatch import fnmatchcase

    return any(fnmatchcase(value, alt) for alt in pattern.split("|"))


def _rule_fires(properties: dict[str, str]) -> bool:
    (tokens,) = _rules()
    for key, attr, op, value in tokens:
        if op not in ("==", "!="):
            continue
        actual = properties.get(f"{key}{{{attr}}}" if attr else key, "")
        if _env_glob_matches(value, actual) != (op == "=="):
            return False
    return True


STICK = {
    "ACTION": "add",
    "SUBSYSTEM": "block",
    "ENV{ID_BUS}": "usb",
    "ENV{ID_FS_LABEL}": "CALLREC",
    "ENV{ID_FS_TYPE}": "ext4",
}


@pytest.mark.parametrize(
    ("change", "fires"),
    [
        ({}, True),
        ({"ACTION": "change"}, True),
        ({"ENV{ID_FS_TYPE}": "vfat"}, True),
        ({"ENV{ID_FS_TYPE}": "exfat"}, True),
        ({"ACTION": "remove"}, False),
        ({"ENV{ID_FS_LABEL}": "OTHER"}, False),
        ({"ENV{ID_FS_LABEL}": "callrec"}, False),
        ({"ENV{ID_FS_TYPE}": "ntfs"}, False),
        ({"ENV{ID_FS_TYPE}": "ext4", "ENV{ID_BUS}": ""}, False),  # the box's own SD card
        ({"SUBSYSTEM": "tty"}, False),
    ],
)
def test_udev_rule_matches_a_usb_stick_labelled_callrec(change: dict[str, str],
                                                        fires: bool) -> None:
    assert _rule_fires({**STICK, **change}) is fires


def test_udev_rule_pulls_in_the_mount_unit() -> None:
    (tokens,) = _rules()
    assert ("ENV", "ID_FS_LABEL", "==", "CALLREC") in tokens
    assert ("TAG", "", "+=", "systemd") in tokens
    assert ("ENV", "SYSTEMD_WANTS", "+=", MOUNT.name) in tokens


# --- install.sh installs and removes them ----------------------------------------------------


def test_install_sh_installs_and_removes_both() -> None:
    text = INSTALL.read_text()
    assert "PROD_USB_UDEV=/etc/udev/rules.d/99-callrec-usb.rules" in text
    assert "PROD_USB_MOUNT=/etc/systemd/system/media-callrec.mount" in text
    assert 'install_file "$REPO/hw/udev/99-callrec-usb.rules" "$PROD_USB_UDEV" 0644' in text
    assert 'install_file "$REPO/systemd/media-callrec.mount" "$PROD_USB_MOUNT" 0644' in text
    assert 'rm -f "$PROD_USB_MOUNT" "$PROD_USB_UDEV"' in text
    # Never enabled, and callrec.service is not restarted for it.
    assert "enable media-callrec" not in text


def test_the_technicians_page_exists() -> None:
    doc = (REPO / "hw" / "USB.md").read_text()
    for words in ("mkfs.ext4 -L CALLREC", "callrec storage status", "status page"):
        assert words in doc
    assert "/media/callrec" in doc
