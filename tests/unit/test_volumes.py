"""storage/volumes.py, the pure parts: mountinfo parsing, mount_for, choose_volume, notices."""

from __future__ import annotations

from pathlib import Path

import pytest

from callrec.storage.volumes import (
    FULL,
    IO_ERROR,
    NOT_INSERTED,
    NOT_MOUNTED,
    READ_ONLY,
    Choice,
    MountEntry,
    VolumeHealth,
    VolumeSet,
    choose_volume,
    fallback_notice,
    mount_for,
    parse_mountinfo,
)

MB = 1_000_000

# Real lines from a Raspberry Pi (bookworm) with a stick at /media/callrec, plus the man page's
# example with two optional fields, a path with spaces/tabs/backslashes, and a line with none.
MOUNTINFO = (
    "22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw\n"
    "25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 propagate_from:2 - ext3 /dev/root "
    "rw,errors=continue\n"
    "41 22 179:1 / /boot/firmware rw,relatime shared:20 - vfat /dev/mmcblk0p1 "
    "rw,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro\n"
    "88 22 8:1 / /media/callrec rw,nosuid,nodev,noexec,noatime shared:45 - ext4 /dev/sda1 "
    "rw,errors=remount-ro\n"
    "90 22 0:50 / /srv/my\\040disk\\011x\\134y rw - tmpfs my\\040src rw,size=2048k\n"
    "91 22 0:51 / /srv/plain ro - tmpfs tmpfs rw\n"
)


def health(
    name: str,
    *,
    free: int = 10_000 * MB,
    error: str = "",
    present: bool = True,
    mounted: bool = True,
) -> VolumeHealth:
    return VolumeHealth(
        name=name,
        root=Path(f"/{name}"),
        present=present,
        mounted=mounted,
        read_only=error == READ_ONLY,
        writable=not error,
        free_bytes=free,
        total_bytes=max(free, 32_000 * MB),
        error=error,
    )


USB_OUT = health("usb", error=NOT_INSERTED, present=False, mounted=False, free=0)


# -- parse_mountinfo ------------------------------------------------------------------------


def test_parses_every_field() -> None:
    entries = parse_mountinfo(MOUNTINFO)
    assert len(entries) == 7
    stick = entries[4]
    assert stick == MountEntry(
        mount_id=88,
        parent_id=22,
        major=8,
        minor=1,
        root="/",
        mount_point="/media/callrec",
        options=("rw", "nosuid", "nodev", "noexec", "noatime"),
        optional=("shared:45",),
        fstype="ext4",
        source="/dev/sda1",
        super_options=("rw", "errors=remount-ro"),
    )
    assert not stick.read_only


def test_optional_fields_end_at_the_separator() -> None:
    man_page = parse_mountinfo(MOUNTINFO)[2]
    assert man_page.root == "/mnt1"
    assert man_page.mount_point == "/mnt2"
    assert man_page.optional == ("master:1", "propagate_from:2")
    assert (man_page.fstype, man_page.source) == ("ext3", "/dev/root")
    assert man_page.super_options == ("rw", "errors=continue")
    assert parse_mountinfo(MOUNTINFO)[6].optional == ()


def test_octal_escapes_are_decoded() -> None:
    entry = parse_mountinfo(MOUNTINFO)[5]
    assert entry.mount_point == "/srv/my disk\tx\\y"
    assert entry.source == "my src"


def test_read_only_from_mount_or_superblock_options() -> None:
    entries = parse_mountinfo(MOUNTINFO)
    assert entries[6].read_only  # mounted ro
    remounted = parse_mountinfo(
        "88 22 8:1 / /media/callrec rw,noatime shared:45 - ext4 /dev/sda1 ro,errors=remount-ro\n"
    )
    assert remounted[0].read_only  # the filesystem turned read-only after errors
    assert not entries[0].read_only


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "1 2 3:4 / /x rw shared:1 ext4 /dev/a rw",  # no separator
        "x 2 3:4 / /x rw - ext4 /dev/a rw",  # mount id not a number
        "1 2 34 / /x rw - ext4 /dev/a rw",  # no major:minor
        "1 2 3:4 / /x rw - ext4",  # too few fields after the separator
    ],
)
def test_malformed_lines_are_skipped(line: str) -> None:
    good = "5 1 8:1 / /ok rw - ext4 /dev/sda1 rw"
    assert [e.mount_point for e in parse_mountinfo(f"{line}\n{good}\n")] == ["/ok"]


def test_a_dash_in_a_path_is_not_the_separator() -> None:
    entry = parse_mountinfo("5 1 8:1 - /a\\040-\\040b rw - ext4 /dev/sda1 rw")[0]
    assert entry.root == "-"
    assert entry.mount_point == "/a - b"
    assert entry.fstype == "ext4"


def test_the_running_systems_table_parses() -> None:
    text = Path("/proc/self/mountinfo").read_text()
    entries = parse_mountinfo(text)
    assert len(entries) == len(text.splitlines())
    assert mount_for("/", entries) is not None


# -- mount_for ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "mount_point"),
    [
        ("/", "/"),
        ("/var/lib/callrec", "/"),
        ("/media/callrec", "/media/callrec"),
        ("/media/callrec/", "/media/callrec"),
        ("/media/callrec/callrec/2024/05", "/media/callrec"),
        ("/media/callrec2/callrec", "/"),  # a prefix, but not of whole components
        ("/media/callre", "/"),
        ("/media/callrec/../x", "/"),
        ("/boot/firmware/config.txt", "/boot/firmware"),
        ("/srv/my disk\tx\\y/a", "/srv/my disk\tx\\y"),
    ],
)
def test_mount_for_takes_the_longest_whole_component_prefix(path: str, mount_point: str) -> None:
    entry = mount_for(path, parse_mountinfo(MOUNTINFO))
    assert entry is not None
    assert entry.mount_point == mount_point


def test_mount_for_takes_the_top_of_stacked_mounts() -> None:
    stacked = MOUNTINFO + "99 88 0:60 / /media/callrec rw - tmpfs tmpfs rw\n"
    entry = mount_for("/media/callrec/callrec", parse_mountinfo(stacked))
    assert entry is not None and entry.mount_id == 99


def test_mount_for_skips_a_mount_hidden_by_a_later_mount_on_its_parent() -> None:
    # /media mounted after the stick: /media/callrec now shows /media's own folder.
    hidden = MOUNTINFO + "95 22 0:61 / /media rw - tmpfs tmpfs rw\n"
    entry = mount_for("/media/callrec/callrec", parse_mountinfo(hidden))
    assert entry is not None and entry.mount_id == 95
    # A stick mounted on the new /media is found again.
    again = hidden + "96 95 8:17 / /media/callrec rw - vfat /dev/sdb1 rw\n"
    entry = mount_for("/media/callrec/callrec", parse_mountinfo(again))
    assert entry is not None and entry.mount_id == 96


def test_mount_for_without_a_root_mount_or_with_a_relative_path() -> None:
    only = parse_mountinfo("5 1 8:1 / /media/callrec rw - ext4 /dev/sda1 rw")
    assert mount_for("/var/lib/callrec", only) is None
    with pytest.raises(ValueError, match="absolute"):
        mount_for("media/callrec", only)


# -- choose_volume --------------------------------------------------------------------------


def test_usb_when_it_is_healthy() -> None:
    choice = choose_volume([health("sd"), health("usb")], min_free_bytes=500 * MB)
    assert choice.name == "usb"
    assert choice.reason == "recording to the USB stick"
    assert choice.passed_over == () and choice.rotate == () and not choice.fault


def test_sd_when_no_stick_is_in() -> None:
    choice = choose_volume([health("sd"), USB_OUT], min_free_bytes=500 * MB)
    assert choice.name == "sd"
    assert choice.reason == "recording to the SD card: the USB stick is not inserted"
    assert not choice.fault  # an absent stick is not a fault


@pytest.mark.parametrize("error", [READ_ONLY, IO_ERROR, NOT_MOUNTED, "no permission"])
def test_a_failing_stick_falls_back_to_sd_and_is_a_fault(error: str) -> None:
    choice = choose_volume([health("sd"), health("usb", error=error)], min_free_bytes=500 * MB)
    assert choice.name == "sd"
    assert choice.fault
    assert [p.problem for p in choice.passed_over] == [error]
    assert choice.rotate == ()


def test_a_stick_low_on_space_is_rotated_first_then_sd() -> None:
    choice = choose_volume([health("sd"), health("usb", free=120 * MB)], min_free_bytes=500 * MB)
    assert choice.name == "sd"
    assert choice.rotate == ("usb",)
    assert "the USB stick is full (120 MB free, 500 MB needed)" in choice.reason
    assert not choice.fault
    # ENOSPC on the probe write counts the same.
    enospc = choose_volume([health("sd"), health("usb", error=FULL)], min_free_bytes=0)
    assert enospc.name == "sd" and enospc.rotate == ("usb",)


def test_sd_can_be_preferred() -> None:
    choice = choose_volume([health("usb"), health("sd")], prefer="sd", min_free_bytes=0)
    assert choice.name == "sd" and choice.preferred == "sd"


def test_nothing_can_record() -> None:
    choice = choose_volume(
        [health("sd", free=10 * MB), health("usb", error=IO_ERROR)], min_free_bytes=500 * MB
    )
    assert choice.name is None
    assert choice.fault
    assert choice.reason == (
        "no volume can take recordings: the USB stick has I/O errors; "
        "the SD card is full (10 MB free, 500 MB needed)"
    )
    assert choice.rotate == ("sd",)
    assert choose_volume([], min_free_bytes=0).name is None


def test_only_an_sd_card_configured() -> None:
    choice = choose_volume([health("sd")], min_free_bytes=0)
    assert choice.name == "sd" and choice.preferred == "sd"
    assert fallback_notice(None, choice) is None


# -- fallback_notice ------------------------------------------------------------------------


def _sd_because(usb: VolumeHealth) -> Choice:
    return choose_volume([health("sd"), usb], min_free_bytes=500 * MB)


def test_no_notice_while_on_the_stick() -> None:
    choice = choose_volume([health("sd"), health("usb")], min_free_bytes=0)
    assert fallback_notice(health("usb"), choice) is None
    assert fallback_notice(None, choice) is None


def test_a_pulled_stick_is_said_once() -> None:
    choice = _sd_because(USB_OUT)
    removed = "Recording to the SD card: the USB stick was removed."
    assert fallback_notice(USB_OUT, choice) == removed
    assert fallback_notice(health("sd"), choice) is None  # next check: already on the SD card
    assert fallback_notice(None, choice) is None  # started without a stick: not news


@pytest.mark.parametrize(
    ("usb", "sentence"),
    [
        (health("usb", error=READ_ONLY), "Recording to the SD card: the USB stick is read-only."),
        (health("usb", error=IO_ERROR), "Recording to the SD card: the USB stick has I/O errors."),
        (
            health("usb", free=120 * MB),
            "Recording to the SD card: the USB stick is full (120 MB free, 500 MB needed).",
        ),
        (
            health("usb", error=NOT_MOUNTED, mounted=False),
            "Recording to the SD card: the USB stick is inserted but not mounted (see hw/USB.md).",
        ),
    ],
)
def test_faults_are_said_every_time(usb: VolumeHealth, sentence: str) -> None:
    choice = _sd_because(usb)
    for previous in (None, usb, health("sd")):
        assert fallback_notice(previous, choice) == sentence


def test_nothing_can_record_is_said() -> None:
    choice = choose_volume([health("sd", error=READ_ONLY), USB_OUT], min_free_bytes=0)
    assert fallback_notice(health("sd"), choice) == (
        "No volume can take recordings: the USB stick is not inserted; the SD card is read-only."
    )


def test_notices_name_no_folders() -> None:
    for usb in (USB_OUT, health("usb", error=IO_ERROR), health("usb", free=1)):
        notice = fallback_notice(USB_OUT, _sd_because(usb))
        assert notice is not None
        assert str(usb.root) not in notice and "/sd" not in notice


# -- VolumeSet configuration ----------------------------------------------------------------


def test_volume_set_roots(tmp_path: Path) -> None:
    volumes = VolumeSet(tmp_path / "data", tmp_path / "media")
    assert volumes.usb_root == tmp_path / "media" / "callrec"
    assert volumes.root("sd") == tmp_path / "data"
    assert volumes.names == ["sd", "usb"]
    assert VolumeSet(tmp_path / "data", None).names == ["sd"]
    with pytest.raises(KeyError):
        VolumeSet(tmp_path / "data", None).root("usb")


@pytest.mark.parametrize("subdir", ["/abs", "../out", "a/../../b"])
def test_volume_set_refuses_a_subfolder_outside_the_stick(tmp_path: Path, subdir: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        VolumeSet(tmp_path / "data", tmp_path / "media", usb_subdir=subdir)


def test_volume_set_refuses_sd_data_on_the_stick(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vanish with the stick"):
        VolumeSet(tmp_path / "media" / "callrec", tmp_path / "media")
