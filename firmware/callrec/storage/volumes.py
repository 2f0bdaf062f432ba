"""Where recordings go: the SD card's data directory or a USB stick, and whether each can take them.

Recordings go to the USB stick when it is mounted, writable and has room, else to the SD card.
The pure parts take values and return values: `parse_mountinfo`, `mount_for`,
`choose_volume`, `fallback_notice`. The I/O edge is `probe` (statvfs and a small probe write),
`VolumeSet` (the configured volumes) and `MountWatcher` (a thread that notices mounts and
unmounts and only calls back to enqueue).

The stick is mounted by systemd (systemd/media-callrec.mount, pulled in by
hw/udev/99-callrec-usb.rules) and lazily unmounted when it is pulled out. Its mount point is also
an ordinary, empty directory on the SD card: a stick counts as present only when the recordings'
folder is on a mount at or below the mount point, and nothing is written there otherwise (that
would fill the SD card behind the status page's back).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import select
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

SD = "sd"
USB = "usb"
MOUNTINFO = Path("/proc/self/mountinfo")
DEFAULT_USB_MOUNT_POINT = Path("/media/callrec")
DEFAULT_USB_SUBDIR = "callrec"
# The udev rule's label: its link shows a stick that is inserted but could not be mounted.
DEFAULT_USB_DEVICE = Path("/dev/disk/by-label/CALLREC")
PROBE_PREFIX = ".callrec-probe"
# One filesystem block: the probe proves that a block can be allocated and synced.
PROBE_BYTES = 4096

# Plain-language reasons in VolumeHealth.error (shown on the status page and in the log).
NOT_INSERTED = "not inserted"
NOT_MOUNTED = "inserted but not mounted"
READ_ONLY = "read-only"
IO_ERROR = "I/O error"
FULL = "full"
NO_PERMISSION = "no permission"

# Reasons that are not faults: a stick that is not there, a volume that rotation can free up.
NOT_FAULTS = frozenset({NOT_INSERTED, FULL})

_LABELS = {SD: "the SD card", USB: "the USB stick"}
_IO_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EIO", "ENXIO", "ENODEV", "ENOTCONN", "ESTALE", "EUCLEAN", "EBADMSG", "ENOMEDIUM")
    if hasattr(errno, name)
)


# -- /proc/self/mountinfo --------------------------------------------------------------------


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo (see `man 5 proc`), with the paths unescaped."""

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str
    mount_point: str
    options: tuple[str, ...]
    optional: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...]

    @property
    def read_only(self) -> bool:
        """Mounted read-only, or its filesystem is (e.g. remounted so after errors)."""
        return "ro" in self.options or "ro" in self.super_options


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline, backslash (and '#') in paths as \ooo.
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def _parse_line(line: str) -> MountEntry | None:
    fields = line.split(" ")
    try:
        sep = fields.index("-", 6)
    except ValueError:
        return None
    if sep < 6 or len(fields) - sep - 1 < 3:
        return None
    try:
        major, minor = (int(n) for n in fields[2].split(":"))
        mount_id, parent_id = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return MountEntry(
        mount_id=mount_id,
        parent_id=parent_id,
        major=major,
        minor=minor,
        root=_unescape(fields[3]),
        mount_point=_unescape(fields[4]),
        options=tuple(fields[5].split(",")),
        optional=tuple(f for f in fields[6:sep] if f),
        fstype=_unescape(fields[sep + 1]),
        source=_unescape(fields[sep + 2]),
        super_options=tuple(" ".join(fields[sep + 3 :]).split(",")),
    )


def parse_mountinfo(text: str) -> list[MountEntry]:
    """The mounts listed in /proc/self/mountinfo text, in order; malformed lines are skipped."""
    entries = []
    for line in text.splitlines():
        entry = _parse_line(line) if line.strip() else None
        if entry is not None:
            entries.append(entry)
    return entries


def _is_within(path: str, top: str) -> bool:
    """`path` is `top` or below it, by whole path components."""
    return top == "/" or path == top or path.startswith(top.rstrip("/") + "/")


def _longest_prefix(target: str, entries: list[MountEntry]) -> MountEntry | None:
    best: MountEntry | None = None
    for entry in entries:
        point = os.path.normpath(entry.mount_point)
        if _is_within(target, point) and (
            best is None or len(point) >= len(os.path.normpath(best.mount_point))
        ):
            best = entry
    return best


def mount_for(path: str | os.PathLike[str], entries: Iterable[MountEntry]) -> MountEntry | None:
    """The mount that holds `path` (absolute; symlinks are not resolved).

    That is the longest mount point that is a whole-component prefix of the path, found by
    walking the mount tree from "/" (parent ids), so that a mount hidden by a later mount on
    one of its parent directories is not taken, and of mounts stacked on one point the top one
    is. A table without a "/" mount (a fragment) is matched by the longest prefix alone.
    """
    target = os.path.normpath(os.fspath(path))
    if not target.startswith("/"):
        raise ValueError(f"not an absolute path: {target!r}")
    table = list(entries)
    roots = [e for e in table if os.path.normpath(e.mount_point) == "/"]
    if not roots:
        return _longest_prefix(target, table)
    children: dict[tuple[int, str], MountEntry] = {}
    for entry in table:  # the last one listed wins: mounted later, so on top
        children[(entry.parent_id, os.path.normpath(entry.mount_point))] = entry

    def top(entry: MountEntry, point: str) -> MountEntry:
        for _ in range(len(table)):  # bounded: a damaged table cannot loop forever
            above = children.get((entry.mount_id, point))
            if above is None or above is entry:
                break
            entry = above
        return entry

    root_ids = {e.mount_id for e in roots}
    bottom = next((e for e in roots if e.parent_id not in root_ids), roots[0])
    current = top(bottom, "/")
    prefix = ""
    for part in target.split("/")[1:]:
        if not part:
            continue
        prefix = f"{prefix}/{part}"
        child = children.get((current.mount_id, prefix))
        if child is not None:
            current = top(child, prefix)
    return current


# -- health of a volume ----------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeHealth:
    """What a probe found on one volume; `error` is "" when it can take recordings."""

    name: str
    root: Path
    present: bool
    mounted: bool
    read_only: bool
    writable: bool
    free_bytes: int
    total_bytes: int
    error: str

    @property
    def usable(self) -> bool:
        return self.writable and not self.error

    @property
    def fault(self) -> bool:
        """Something is wrong that a person should look at (the fault LED)."""
        return bool(self.error) and self.error not in NOT_FAULTS


def problem_of(exc: OSError) -> str:
    """The plain-language reason for a failed filesystem call."""
    if exc.errno == errno.EROFS:
        return READ_ONLY
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return FULL
    if exc.errno in (errno.EACCES, errno.EPERM):
        return NO_PERMISSION
    if exc.errno in _IO_ERRNOS:
        return IO_ERROR
    return f"error: {exc.strerror or exc}"


def _read_text(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return None


def _on_own_mount(root: str, boundary: str, entries: list[MountEntry] | None) -> bool:
    """`root` lies on a filesystem mounted at `boundary` or below it (not on the one that holds
    the empty mount-point directory)."""
    if entries is None:  # no /proc: compare devices, as os.path.ismount does
        return os.path.ismount(boundary) and _is_within(root, boundary)
    entry = mount_for(root, entries)
    return entry is not None and _is_within(os.path.normpath(entry.mount_point), boundary)


def _probe_write(directory: Path) -> None:
    """Create, fill, fsync and remove a small uniquely named file; raise the first OSError."""
    path = directory / f"{PROBE_PREFIX}-{os.getpid()}-{secrets.token_hex(4)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    failure: OSError | None = None
    try:
        view = memoryview(b"\0" * PROBE_BYTES)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        failure = exc
    finally:
        try:
            os.close(fd)
        except OSError as exc:
            failure = failure or exc
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        failure = failure or exc
    if failure is not None:
        raise failure


def probe(
    name: str,
    root: str | os.PathLike[str],
    *,
    must_be_mount: bool,
    mountinfo_text: str | None = None,
    mount_point: str | os.PathLike[str] | None = None,
    device: str | os.PathLike[str] | None = None,
) -> VolumeHealth:
    """Look at one volume: is it there, its space, and whether a synced write works.

    `root` is the folder recordings go to (created, 0700, when missing). With `must_be_mount`
    (the USB stick) it must lie on a filesystem mounted at `mount_point` (default: `root`) or
    below; if not, the stick is "not inserted" ("inserted but not mounted" when `device`
    exists) and nothing is written. `mountinfo_text` defaults to /proc/self/mountinfo.
    May block while a failing device times out: call it off the daemon's decision thread.
    """
    text = mountinfo_text if mountinfo_text is not None else _read_text(MOUNTINFO)
    entries = parse_mountinfo(text) if text is not None else None
    return _probe(name, root, must_be_mount, entries, mount_point, device)


def _probe(
    name: str,
    root: str | os.PathLike[str],
    must_be_mount: bool,
    entries: list[MountEntry] | None,
    mount_point: str | os.PathLike[str] | None,
    device: str | os.PathLike[str] | None,
) -> VolumeHealth:
    real_root = os.path.realpath(root)
    healthy = VolumeHealth(
        name=name, root=Path(real_root), present=True, mounted=True, read_only=False,
        writable=False, free_bytes=0, total_bytes=0, error="",
    )
    if must_be_mount:
        boundary = os.path.realpath(mount_point if mount_point is not None else root)
        if not _on_own_mount(real_root, boundary, entries):
            inserted = device is not None and os.path.exists(device)
            return replace(
                healthy, present=inserted, mounted=False,
                error=NOT_MOUNTED if inserted else NOT_INSERTED,
            )
    entry = mount_for(real_root, entries) if entries else None
    read_only = entry is not None and entry.read_only
    try:
        if not os.path.isdir(real_root):
            Path(real_root).mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.statvfs(real_root)
    except OSError as exc:
        problem = problem_of(exc)
        return replace(healthy, read_only=read_only or problem == READ_ONLY, error=problem)
    healthy = replace(
        healthy, free_bytes=st.f_bavail * st.f_frsize, total_bytes=st.f_blocks * st.f_frsize
    )
    if read_only or st.f_flag & os.ST_RDONLY:
        return replace(healthy, read_only=True, error=READ_ONLY)
    try:
        _probe_write(Path(real_root))
    except OSError as exc:
        problem = problem_of(exc)
        return replace(healthy, read_only=problem == READ_ONLY, error=problem)
    return replace(healthy, writable=True)


# -- choosing a volume (pure) ----------------------------------------------------------------


class PassedOver(NamedTuple):
    """A volume the choice did not take: its name, the reason token and a phrase saying why."""

    name: str
    problem: str
    phrase: str


@dataclass(frozen=True)
class Choice:
    """Where recordings should go now (`name` None: nowhere) and why, in plain language."""

    name: str | None
    reason: str
    preferred: str = USB
    # Volumes tried before the chosen one (all of them when none was chosen), in order.
    passed_over: tuple[PassedOver, ...] = ()
    # Volumes passed over only for lack of space: rotating old recordings there may make room.
    rotate: tuple[str, ...] = ()

    @property
    def fault(self) -> bool:
        """Light the fault LED: nothing can record, or a volume failed (not merely absent/full)."""
        return self.name is None or any(p.problem not in NOT_FAULTS for p in self.passed_over)


def label(name: str) -> str:
    """How people call a volume: "the SD card", "the USB stick"."""
    return _LABELS.get(name, f"volume {name}")


def _mb(n: int) -> str:
    return f"{n // 1_000_000} MB"


def _phrase(h: VolumeHealth, min_free_bytes: int) -> tuple[str, str]:
    """(problem, phrase after "the USB stick ...") for a volume that cannot take recordings."""
    if not h.error and h.free_bytes < min_free_bytes:
        return FULL, f"is full ({_mb(h.free_bytes)} free, {_mb(min_free_bytes)} needed)"
    phrases = {
        NOT_INSERTED: "is not inserted",
        NOT_MOUNTED: "is inserted but not mounted (see hw/USB.md)",
        READ_ONLY: "is read-only",
        IO_ERROR: "has I/O errors",
        FULL: "is full",
        NO_PERMISSION: "cannot be written to (no permission; see hw/USB.md)",
    }
    problem = h.error or "not writable"
    return problem, phrases.get(problem, f"cannot be used ({problem})")


def choose_volume(
    healths: Sequence[VolumeHealth], *, prefer: str = USB, min_free_bytes: int
) -> Choice:
    """The preferred volume when it is usable with `min_free_bytes` free, else the next one
    (in the order given) that is; None with the reasons when none is."""
    ordered = sorted(healths, key=lambda h: h.name != prefer)  # stable: keeps the others' order
    preferred = prefer if any(h.name == prefer for h in healths) else (
        ordered[0].name if ordered else prefer
    )
    passed: list[PassedOver] = []
    for h in ordered:
        if h.usable and h.free_bytes >= min_free_bytes:
            why = "" if not passed else ": " + "; ".join(
                f"{label(p.name)} {p.phrase}" for p in passed
            )
            return Choice(
                name=h.name,
                reason=f"recording to {label(h.name)}{why}",
                preferred=preferred,
                passed_over=tuple(passed),
                rotate=tuple(p.name for p in passed if p.problem == FULL),
            )
        problem, phrase = _phrase(h, min_free_bytes)
        passed.append(PassedOver(h.name, problem, phrase))
    details = "; ".join(f"{label(p.name)} {p.phrase}" for p in passed) or "none is configured"
    return Choice(
        name=None,
        reason=f"no volume can take recordings: {details}",
        preferred=preferred,
        passed_over=tuple(passed),
        rotate=tuple(p.name for p in passed if p.problem == FULL),
    )


def fallback_notice(previous: VolumeHealth | None, chosen: Choice) -> str | None:
    """The sentence for the status page and the log when recordings are not going to the
    preferred volume for a reason worth telling; None when all is as it should be.

    `previous` is the volume recordings went to until now (None at start-up): a stick that was
    in use and is now "not inserted" was pulled out, which is said once; a stick that was never
    there is not news. Faults (read-only, I/O errors, full...) are said every time. No personal
    data: only volume names and reasons.
    """
    if chosen.name is None:
        return chosen.reason[:1].upper() + chosen.reason[1:] + "."
    if chosen.name == chosen.preferred:
        return None
    left = next((p for p in chosen.passed_over if p.name == chosen.preferred), None)
    if left is None:
        return None
    where = f"Recording to {label(chosen.name)}: {label(left.name)}"
    if left.problem == NOT_INSERTED:
        if previous is not None and previous.name == left.name:
            return f"{where} was removed."
        return None
    return f"{where} {left.phrase}."


# -- the configured volumes (I/O) ------------------------------------------------------------


class VolumeSet:
    """The SD card's data directory and the optional USB stick, probed together."""

    def __init__(
        self,
        sd_root: str | os.PathLike[str],
        usb_mount_point: str | os.PathLike[str] | None = DEFAULT_USB_MOUNT_POINT,
        *,
        usb_subdir: str = DEFAULT_USB_SUBDIR,
        usb_device: str | os.PathLike[str] | None = DEFAULT_USB_DEVICE,
        prefer: str = USB,
        mountinfo: str | os.PathLike[str] = MOUNTINFO,
    ) -> None:
        self.sd_root = Path(os.path.abspath(sd_root))
        self.usb_mount_point = (
            Path(os.path.abspath(usb_mount_point)) if usb_mount_point is not None else None
        )
        sub = Path(usb_subdir)
        if sub.is_absolute() or ".." in sub.parts:
            raise ValueError(f"the USB subfolder must be relative, below its mount: {usb_subdir!r}")
        self.usb_subdir = usb_subdir
        self.usb_device = Path(usb_device) if usb_device is not None else None
        self.prefer = prefer
        self.mountinfo = Path(mountinfo)
        if self.usb_mount_point is not None and _is_within(
            str(self.sd_root), str(self.usb_mount_point)
        ):
            raise ValueError(
                f"the SD card's data directory {self.sd_root} is under the USB mount point "
                f"{self.usb_mount_point}: it would vanish with the stick"
            )

    @property
    def usb_root(self) -> Path | None:
        """Where recordings go on the stick, or None when no stick is configured."""
        if self.usb_mount_point is None:
            return None
        return self.usb_mount_point / self.usb_subdir

    def root(self, name: str) -> Path:
        """The recordings folder of volume `name` ("sd" or "usb")."""
        if name == SD:
            return self.sd_root
        if name == USB and self.usb_root is not None:
            return self.usb_root
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [SD] if self.usb_mount_point is None else [SD, USB]

    def check(self) -> list[VolumeHealth]:
        """Probe every configured volume against one reading of the mount table."""
        text = _read_text(self.mountinfo)
        # Without a readable table (no /proc), the stick's mount is told by st_dev instead.
        entries = parse_mountinfo(text) if text is not None else None
        healths = [_probe(SD, self.sd_root, False, entries, None, None)]
        if self.usb_mount_point is not None and self.usb_root is not None:
            healths.append(
                _probe(USB, self.usb_root, True, entries, self.usb_mount_point, self.usb_device)
            )
        return healths

    def select(self, min_free_bytes: int) -> tuple[Choice, list[VolumeHealth]]:
        """Probe the volumes and choose where the next recording (or the rest of this one)
        goes."""
        healths = self.check()
        return choose_volume(healths, prefer=self.prefer, min_free_bytes=min_free_bytes), healths


# -- noticing mounts and unmounts ------------------------------------------------------------


class MountWatcher:
    """A thread that calls `on_change()` whenever the mount table changes.

    The kernel marks /proc/self/mountinfo with POLLPRI|POLLERR after every mount, unmount or
    remount in this mount namespace (`man 5 proc`), so the thread sleeps in poll() and wakes
    only then. Without that (no /proc, no poll) it re-reads the table every
    `fallback_interval_s` and calls back when it differs. `on_change` runs on this thread and
    must only enqueue an event. A filesystem the kernel turns read-only after errors changes no
    mount, so it is not seen here: a write error or a periodic check finds it.
    """

    def __init__(
        self,
        on_change: Callable[[], None],
        *,
        path: str | os.PathLike[str] = MOUNTINFO,
        fallback_interval_s: float = 30.0,
        settle_s: float = 0.05,
        name: str = "mount-watcher",
    ) -> None:
        self._on_change = on_change
        self._path = Path(path)
        self._interval = fallback_interval_s
        self._settle_s = settle_s
        self._name = name
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake: tuple[int, int] | None = None
        self.mode = ""  # "poll" or "periodic" once running (for the log and tests)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("MountWatcher already started")
        self._stopping.clear()
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        if self._wake is not None:
            try:
                os.write(self._wake[1], b"x")
            except OSError:
                pass
        thread.join(timeout)
        if self._wake is not None and not thread.is_alive():
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    def _fire(self) -> None:
        try:
            self._on_change()
        except Exception:  # a bad callback must not end the watching
            log.exception("mount watcher callback failed")

    def _run(self) -> None:
        try:
            if hasattr(select, "poll") and self._watch_with_poll():
                return
        except OSError as exc:
            log.warning("watching %s with poll() failed (%s): re-reading it every %.0f s",
                        self._path, exc.strerror or exc, self._interval)
        self._watch_periodically()

    def _watch_with_poll(self) -> bool:
        """Sleep in poll() until the table changes or stop(); False: poll is not usable here."""
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("cannot open %s (%s): re-reading it every %.0f s",
                        self._path, exc.strerror or exc, self._interval)
            return False
        assert self._wake is not None
        try:
            poller = select.poll()
            poller.register(fd, select.POLLPRI | select.POLLERR)
            poller.register(self._wake[0], select.POLLIN)
            self.mode = "poll"
            # Also compared every interval, in case this kernel never signals (it costs a
            # wake-up and a read of a few kB).
            last = _read_text(self._path)
            while not self._stopping.is_set():
                events = dict(poller.poll(self._interval * 1000))
                if self._stopping.is_set() or self._wake[0] in events:
                    return True
                if events.get(fd, 0) & select.POLLNVAL:
                    return False
                if fd in events:
                    # A stick's mount often comes with a remount or a second mount: wait for
                    # the table to settle (briefly) and call back once.
                    deadline = time.monotonic() + 10 * self._settle_s
                    while time.monotonic() < deadline and poller.poll(self._settle_s * 1000):
                        if self._stopping.is_set():
                            return True
                now = _read_text(self._path)
                if fd in events or now != last:
                    self._fire()
                last = now
            return True
        finally:
            os.close(fd)

    def _watch_periodically(self) -> None:
        self.mode = "periodic"
        last = _read_text(self._path)
        while not self._stopping.wait(self._interval):
            now = _read_text(self._path)
            if now is None or now != last:
                self._fire()
            last = now
