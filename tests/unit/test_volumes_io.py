"""storage/volumes.py against real mounts: a 2 MB tmpfs plays the USB stick.

Mounting needs root (CI runs as root); without it these tests skip. Every mount is undone in the
fixture's teardown, whatever the test did.
"""

from __future__ import annotations

import errno
import os
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callrec.storage import volumes
from callrec.storage.volumes import (
    FULL,
    IO_ERROR,
    NOT_INSERTED,
    NOT_MOUNTED,
    PROBE_PREFIX,
    READ_ONLY,
    MountWatcher,
    VolumeHealth,
    VolumeSet,
    parse_mountinfo,
    probe,
    problem_of,
)

MB = 1_000_000


def _mounted_at(point: Path) -> bool:
    text = Path("/proc/self/mountinfo").read_text()
    return any(e.mount_point == str(point) for e in parse_mountinfo(text))


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"


class Stick:
    """A tmpfs mounted and unmounted at `point`, standing in for the USB stick."""

    def __init__(self, point: Path) -> None:
        self.point = point

    def insert(self, size: str = "2m") -> None:
        _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(self.point))

    def remount_read_only(self) -> None:
        _run("mount", "-o", "remount,ro", str(self.point))

    def pull(self) -> None:
        # What systemd does when the device goes (LazyUnmount=yes): detached at once.
        _run("umount", "-l", str(self.point))

    def fill(self) -> None:
        """Write until the filesystem refuses: ENOSPC."""
        chunk = b"\0" * 65536
        with open(self.point / "filler", "wb", buffering=0) as f:
            with pytest.raises(OSError) as failure:
                for _ in range(10_000):
                    f.write(chunk)
        assert failure.value.errno == errno.ENOSPC


@pytest.fixture
def stick(tmp_path: Path) -> Iterator[Stick]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs: run as root (CI does)")
    point = tmp_path / "media"
    point.mkdir()
    probe_mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    if probe_mount.returncode != 0:
        pytest.skip(f"needs root to mount a tmpfs: mount failed: {probe_mount.stderr.strip()}")
    subprocess.run(["umount", str(point)], check=True, timeout=30)
    try:
        yield Stick(point)
    finally:
        for _ in range(5):  # stacked mounts: undo them all
            if not _mounted_at(point):
                break
            subprocess.run(["umount", "-l", str(point)], check=False, timeout=30)
        assert not _mounted_at(point)


def _usb(healths: list[VolumeHealth]) -> VolumeHealth:
    return next(h for h in healths if h.name == "usb")


def _volumes(tmp_path: Path, stick: Stick, usb_device: Path | None = None) -> VolumeSet:
    return VolumeSet(tmp_path / "data", stick.point, usb_device=usb_device)


# -- probe ----------------------------------------------------------------------------------


def test_a_mounted_stick_is_writable_and_its_folder_is_made(tmp_path: Path, stick: Stick) -> None:
    stick.insert()
    volumes_ = _volumes(tmp_path, stick)
    choice, healths = volumes_.select(min_free_bytes=MB)
    usb = _usb(healths)
    assert (usb.present, usb.mounted, usb.writable, usb.read_only, usb.error) == (
        True, True, True, False, ""
    )
    assert usb.root == stick.point / "callrec"
    assert 1.5 * MB < usb.total_bytes <= 2.2 * MB
    assert 0 < usb.free_bytes <= usb.total_bytes
    assert choice.name == "usb"
    assert (stick.point / "callrec").stat().st_mode & 0o777 == 0o700
    # The probe leaves nothing behind, on either volume.
    assert os.listdir(stick.point / "callrec") == []
    assert not [n for n in os.listdir(tmp_path / "data") if n.startswith(PROBE_PREFIX)]
    sd = next(h for h in healths if h.name == "sd")
    assert sd.writable and sd.error == ""


def test_no_stick_means_not_inserted_and_nothing_written(tmp_path: Path, stick: Stick) -> None:
    volumes_ = _volumes(tmp_path, stick, usb_device=tmp_path / "no-such-device")
    choice, healths = volumes_.select(min_free_bytes=MB)
    usb = _usb(healths)
    assert (usb.present, usb.mounted, usb.writable) == (False, False, False)
    assert usb.error == NOT_INSERTED
    assert (usb.free_bytes, usb.total_bytes) == (0, 0)  # not the SD card's space
    assert choice.name == "sd"
    # The empty mount point is on the SD card: nothing may be written there.
    assert os.listdir(stick.point) == []


def test_a_stick_whose_device_is_there_but_not_mounted(tmp_path: Path, stick: Stick) -> None:
    device = tmp_path / "by-label-CALLREC"
    device.touch()
    usb = _usb(_volumes(tmp_path, stick, usb_device=device).check())
    assert (usb.present, usb.mounted, usb.error) == (True, False, NOT_MOUNTED)
    assert os.listdir(stick.point) == []


def test_a_full_stick(tmp_path: Path, stick: Stick) -> None:
    stick.insert()
    (stick.point / "callrec").mkdir()
    stick.fill()
    choice, healths = _volumes(tmp_path, stick).select(min_free_bytes=0)
    usb = _usb(healths)
    assert (usb.mounted, usb.writable, usb.error) == (True, False, FULL)
    assert usb.free_bytes == 0
    assert choice.name == "sd" and choice.rotate == ("usb",)
    assert not [n for n in os.listdir(stick.point / "callrec") if n.startswith(PROBE_PREFIX)]


def test_a_stick_remounted_read_only(tmp_path: Path, stick: Stick) -> None:
    stick.insert()
    volumes_ = _volumes(tmp_path, stick)
    assert _usb(volumes_.check()).writable
    stick.remount_read_only()
    choice, healths = volumes_.select(min_free_bytes=0)
    usb = _usb(healths)
    assert (usb.mounted, usb.read_only, usb.writable, usb.error) == (True, True, False, READ_ONLY)
    assert choice.name == "sd" and choice.fault


def test_read_only_is_seen_even_from_a_stale_mount_table(tmp_path: Path, stick: Stick) -> None:
    stick.insert()
    (stick.point / "callrec").mkdir()
    before = Path("/proc/self/mountinfo").read_text()
    stick.remount_read_only()
    usb = probe("usb", stick.point / "callrec", must_be_mount=True, mountinfo_text=before,
                mount_point=stick.point)
    assert usb.error == READ_ONLY  # statvfs says so


def test_a_pulled_stick(tmp_path: Path, stick: Stick) -> None:
    stick.insert()
    volumes_ = _volumes(tmp_path, stick)
    assert volumes_.select(min_free_bytes=0)[0].name == "usb"
    stick.pull()
    choice, healths = volumes_.select(min_free_bytes=0)
    assert _usb(healths).error == NOT_INSERTED
    assert choice.name == "sd"
    assert os.listdir(stick.point) == []  # the SD card's mount-point folder stays empty


def test_a_folder_on_another_mount_below_the_parent_does_not_count(tmp_path: Path,
                                                                    stick: Stick) -> None:
    # Something mounted on the mount point's parent is not the stick.
    stick.insert()
    parent_mount = Stick(tmp_path)  # over the whole tmp folder
    try:
        parent_mount.insert()
        (tmp_path / "media").mkdir()
        usb = probe("usb", tmp_path / "media" / "callrec", must_be_mount=True,
                    mount_point=tmp_path / "media")
        assert usb.error == NOT_INSERTED
        assert os.listdir(tmp_path / "media") == []
    finally:
        parent_mount.pull()


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (errno.EROFS, READ_ONLY),
        (errno.EIO, IO_ERROR),
        (errno.ENODEV, IO_ERROR),
        (errno.ENOSPC, FULL),
        (errno.EDQUOT, FULL),
        (errno.EACCES, "no permission"),
        (errno.ENOENT, "error: No such file or directory"),
    ],
)
def test_errors_in_plain_language(code: int, problem: str) -> None:
    assert problem_of(OSError(code, os.strerror(code))) == problem


# -- MountWatcher ---------------------------------------------------------------------------


class Calls:
    """A callback that only records that it was called (as the daemon's would enqueue)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        self.event.set()

    def wait(self, timeout: float = 1.0) -> bool:
        ok = self.event.wait(timeout)
        self.event.clear()
        return ok


def test_watcher_fires_on_mount_remount_and_unmount(stick: Stick) -> None:
    calls = Calls()
    watcher = MountWatcher(calls)
    watcher.start()
    try:
        time.sleep(0.1)
        assert watcher.mode == "poll"
        calls.event.clear()  # (another process's mount, if any, is not this test's business)
        stick.insert()
        assert calls.wait(1.0), "no call within 1 s of the mount"
        stick.remount_read_only()
        assert calls.wait(1.0), "no call within 1 s of the remount"
        stick.pull()
        assert calls.wait(1.0), "no call within 1 s of the unmount"
    finally:
        watcher.stop()


def test_watcher_thread_is_named_daemon_and_stops_quickly() -> None:
    watcher = MountWatcher(lambda: None)
    watcher.start()
    threads = {t.name: t for t in threading.enumerate()}
    assert "mount-watcher" in threads and threads["mount-watcher"].daemon
    with pytest.raises(RuntimeError):
        watcher.start()
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 1.0
    assert "mount-watcher" not in {t.name for t in threading.enumerate()}
    watcher.stop()  # twice is harmless


def test_watcher_survives_a_failing_callback(stick: Stick) -> None:
    calls = Calls()

    def bad() -> None:
        calls()
        raise RuntimeError("boom")

    watcher = MountWatcher(bad)
    watcher.start()
    try:
        stick.insert()
        assert calls.wait(1.0)
        stick.pull()
        assert calls.wait(1.0)
    finally:
        watcher.stop()


def test_watcher_falls_back_to_re_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No poll(): the table is re-read every interval and a change is reported.
    monkeypatch.delattr(select, "poll")
    table = tmp_path / "mountinfo"
    table.write_text("22 1 179:2 / / rw - ext4 /dev/mmcblk0p2 rw\n")
    calls = Calls()
    watcher = MountWatcher(calls, path=table, fallback_interval_s=0.05)
    watcher.start()
    try:
        time.sleep(0.3)
        assert watcher.mode == "periodic"
        assert calls.count == 0  # unchanged: no call
        table.write_text(table.read_text() + "88 22 8:1 / /media/callrec rw - ext4 /dev/sda1 rw\n")
        assert calls.wait(1.0)
    finally:
        watcher.stop()


def test_watcher_compares_the_table_when_poll_never_signals(tmp_path: Path) -> None:
    # A regular file never signals POLLPRI: the periodic comparison still sees the change.
    table = tmp_path / "mountinfo"
    table.write_text("22 1 179:2 / / rw - ext4 /dev/mmcblk0p2 rw\n")
    calls = Calls()
    watcher = MountWatcher(calls, path=table, fallback_interval_s=0.05)
    watcher.start()
    try:
        time.sleep(0.3)
        assert watcher.mode == "poll" and calls.count == 0
        table.write_text(table.read_text() + "88 22 8:1 / /media/callrec rw - ext4 /dev/sda1 rw\n")
        assert calls.wait(1.0)
    finally:
        watcher.stop()


def test_watcher_without_a_mount_table_calls_back_every_interval(tmp_path: Path) -> None:
    calls = Calls()
    watcher = MountWatcher(calls, path=tmp_path / "missing", fallback_interval_s=0.05)
    watcher.start()
    try:
        assert calls.wait(1.0)
        assert watcher.mode == "periodic"
    finally:
        watcher.stop()


def test_module_reads_the_real_mount_table() -> None:
    assert volumes.MOUNTINFO == Path("/proc/self/mountinfo")
