"""install.sh's appliance mode for real, in a Debian bookworm root file system: a new install,
then an upgrade of a box with an old (version 1) configuration, recordings and keys.

The root file system is made with debootstrap (installed by `./install.sh --dev --with-tests`)
once, and cached as a tar file in /var/cache/callrec-test (or $CALLREC_ROOTFS_CACHE), outside the
clone because CI starts from a fresh one; a stamp names the recipe and the tar's SHA-256, and a
cache that does not match it is rebuilt. Downloaded .deb files and pip's wheels are cached there
too, so a cached run downloads nothing. Each run unpacks a fresh copy into a temporary folder.

Every command runs in `unshare --mount` + chroot: /proc and /dev are mounted in a private mount
namespace, so they disappear when the command ends, whatever happens (no cleanup that a failure
could skip, and no mount left under a folder that is then deleted). systemd is not PID 1 there,
as in an image build: the installer must say so and skip only starting services.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callrec.config_migrate import migrate

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CALLREC_ROOTFS_CACHE", "/var/cache/callrec-test"))
MIRROR = "http://deb.debian.org/debian"
# What the cached tar is made of; any change here rebuilds it. systemd (not PID 1, but its
# tools): Raspberry Pi OS has it, and the installer enables the unit and runs systemd-analyze.
RECIPE = {"suite": "bookworm", "variant": "minbase", "include": ["systemd"], "mirror": MIRROR,
          "format": 1}
SRC = "/root/callrec-src"  # the working tree's copy inside the root file system
INSTALL_TIMEOUT = 1800

pytestmark = [
    pytest.mark.rootfs,
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, chroot and mounts need root"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) missing"),
]


def _need_debootstrap() -> str:
    tool = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(tool).exists():
        message = "debootstrap missing (./install.sh --dev --with-tests installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs the install first: missing means install.sh is wrong
        pytest.skip(message)
    return tool


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _cached_tar() -> Path:
    """The base root file system's tar, built if the cache lacks it or does not match RECIPE."""
    CACHE.mkdir(parents=True, exist_ok=True)
    recipe = {**RECIPE, "arch": _arch()}
    tar = CACHE / f"{recipe['suite']}-{recipe['arch']}.tar"
    stamp = tar.with_suffix(".stamp.json")
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once build it once
        try:
            if tar.exists() and json.loads(stamp.read_text()) == {
                    **recipe, "sha256": _sha256(tar)}:
                return tar
        except (OSError, ValueError):
            pass
        tool = _need_debootstrap()
        build = CACHE / "build"
        if build.exists():
            _remove_tree(build)
        stamp.unlink(missing_ok=True)
        subprocess.run([tool, "--variant", recipe["variant"], "--include",
                        ",".join(recipe["include"]), recipe["suite"], str(build),
                        recipe["mirror"]], check=True, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=1800)
        partial = tar.with_suffix(".tar.tmp")
        subprocess.run(["tar", "--numeric-owner", "-C", str(build), "-cf", str(partial), "."],
                       check=True, timeout=600)
        os.replace(partial, tar)
        stamp.write_text(json.dumps({**recipe, "sha256": _sha256(tar)}))
        _remove_tree(build)
        return tar


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    return [m for m in (line.split()[4] for line in Path("/proc/self/mountinfo").read_text()
                        .splitlines()) if (m + "/").startswith(prefix)]


def _chroot_pids(root: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "root") == str(root):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _remove_tree(root: Path) -> None:
    # Never through a mount (a bound /dev would be emptied): refuse, and stay on this device.
    assert not _mounts_under(root), _mounts_under(root)
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True, timeout=600)


def chroot(
    root: Path, script: str, timeout: float = INSTALL_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """bash -c SCRIPT as root inside `root`, with a clean environment."""
    for name in ("apt-archives", "pip"):
        (CACHE / name).mkdir(parents=True, exist_ok=True)
    outer = (
        'set -e\nR=$1\n'
        'mount -t proc proc "$R/proc"\n'
        'mount --rbind /dev "$R/dev"\n'
        f'mount --bind "{CACHE}/apt-archives" "$R/var/cache/apt/archives"\n'
        f'mkdir -p "$R/root/.cache/pip" && mount --bind "{CACHE}/pip" "$R/root/.cache/pip"\n'
        'exec chroot "$R" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb '
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "$2"\n'
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--fork", "bash", "-c", outer,
         "chroot-run", str(root), script],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False)


def _copy_tree(dest: Path) -> None:
    """The working tree as install.sh's own staging copies it (no VCS, venvs, build output)."""
    dest.mkdir(parents=True)
    excludes = ["./.git", "./.venv", "./var", "./build", "*.egg-info", "__pycache__", "*.pyc",
                "./.pytest_cache", "./.ruff_cache", "./.mypy_cache"]
    with subprocess.Popen(["tar", "-C", str(REPO), *(f"--exclude={e}" for e in excludes),
                           "-cf", "-", "."], stdout=subprocess.PIPE) as pack:
        subprocess.run(["tar", "-C", str(dest), "-xf", "-"], stdin=pack.stdout, check=True)
    assert pack.returncode == 0


def _ids(root: Path, name: str, db: str) -> int:
    for line in (root / "etc" / db).read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise AssertionError(f"{name} not in /etc/{db}")


def _owner(path: Path, root: Path) -> tuple[str, str, int]:
    """(user, group, mode) of a file in the root file system, by the root's own names."""
    st = path.stat()
    names = {}
    for db in ("passwd", "group"):
        names[db] = {int(line.split(":")[2]): line.split(":")[0]
                     for line in (root / "etc" / db).read_text().splitlines() if line}
    return names["passwd"][st.st_uid], names["group"][st.st_gid], st.st_mode & 0o7777


@dataclass
class Box:
    root: Path
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    v1_text: str
    kept: dict[Path, tuple[bytes, int, int, int]]  # content, uid, gid, mode before the upgrade


def _v1_config() -> str:
    """The shipped template as an old box has it (no config_version), edited on site."""
    # Without a config_version line, should the template get one: that is what version 1 is.
    text = re.sub(r"^config_version *=.*\n", "", (REPO / "hw/config/callrec-hat.toml").read_text(),
                  flags=re.M)
    assert "config_version" not in tomllib.loads(text) and "page_size = 25\n" in text
    return ("# Edited on site by the technician: keep this comment.\n"
            + text.replace("page_size = 25\n", "page_size = 40  # the front desk wants more\n"))


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    tar = _cached_tar()
    root = tmp_path_factory.mktemp("rootfs") / "bookworm"
    root.mkdir()
    try:
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-xf", str(tar)],
                       check=True, timeout=600)
        # As in an image build: packages' scripts must not start daemons in the chroot.
        policy = root / "usr" / "sbin" / "policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf")
        # This machine's own certificate authorities (a network that inspects HTTPS has one):
        # the ca-certificates package that the install brings in adds them to the bundle pip
        # uses, as on the host. None on an ordinary machine.
        local_ca = Path("/usr/local/share/ca-certificates")
        if local_ca.is_dir():
            shutil.copytree(local_ca, root / "usr/local/share/ca-certificates", dirs_exist_ok=True)
        (root / "etc" / "hostname").write_text("raspberrypi\n")
        _copy_tree(root / SRC.lstrip("/"))

        first = chroot(root, f"cd {SRC} && bash ./install.sh")
        assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-6000:]

        # The state of a box installed by an earlier version: a version 1 configuration (and
        # the folder's old owner, root), a recording and a key.
        callrec_uid = _ids(root, "callrec", "passwd")
        callrec_gid = _ids(root, "callrec", "group")
        etc = root / "etc" / "callrec"
        v1 = _v1_config()
        (etc / "callrec.toml").write_text(v1)
        os.chown(etc / "callrec.toml", 0, callrec_gid)
        os.chmod(etc / "callrec.toml", 0o640)
        os.chown(etc, 0, callrec_gid)
        data = root / "var" / "lib" / "callrec"
        recording = data / "recordings" / "2024" / "05" / "0001.flac.enc"
        key = data / "keys" / "device.key"
        for path, size in ((recording, 50_000), (key, 73)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(size))
            os.chown(path, callrec_uid, callrec_gid)
            path.chmod(0o600)
        kept_paths = [recording, key, etc / "tls" / "callrec.crt", etc / "tls" / "callrec.key"]
        kept = {}
        for path in kept_paths:
            st = path.stat()
            kept[path] = (path.read_bytes(), st.st_uid, st.st_gid, st.st_mode & 0o7777)
        # New code to install: the upgrade must replace the package in the venv.
        init = root / SRC.lstrip("/") / "firmware" / "callrec" / "__init__.py"
        init.write_text(init.read_text() + "# upgrade marker (test_install_rootfs)\n")

        second = chroot(root, f"cd {SRC} && bash ./install.sh")
        assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-6000:]
        yield Box(root, first, second, v1, kept)
    finally:
        leftovers = _chroot_pids(root)
        for pid in leftovers:  # only processes running inside this test's own root
            os.kill(pid, 9)
        _remove_tree(root)
        assert not leftovers, f"processes left running in the chroot: {leftovers}"


def test_first_run_is_a_new_install_and_says_systemd_is_not_pid_1(box: Box) -> None:
    out = box.first.stdout
    assert "new install of callrec" in out
    assert "upgrade:" not in out
    assert "systemd is not running (container or chroot)" in out
    assert "not started: systemd is not PID 1 here" in out
    assert "callrec is installed." in out
    # systemctl enable worked offline; systemd-analyze verified the unit.
    assert (box.root / "etc/systemd/system/multi-user.target.wants/callrec.service").is_symlink()
    assert "systemd-analyze verify: no problems" in out
    # A new install writes the template at the current version.
    assert "config_version = 2" in (box.root / "etc/callrec/callrec.toml.example").read_text()


def test_second_run_upgrades_and_replaces_the_code(box: Box) -> None:
    out = box.second.stdout
    assert re.search(r"upgrade: callrec \S+ is installed here; upgrading it in place to", out)
    assert "Upgrade done: callrec" in out
    assert "systemd is not PID 1 here (container or chroot): no running service to stop" in out
    site = list((box.root / "opt/callrec/lib").glob("python3*/site-packages/callrec/__init__.py"))
    assert len(site) == 1 and "upgrade marker (test_install_rootfs)" in site[0].read_text()


def test_the_v1_config_is_migrated_keeping_comments_and_values(box: Box) -> None:
    config = box.root / "etc/callrec/callrec.toml"
    text = config.read_text()
    # Exactly what the migration makes of the old text: the version added, nothing else.
    assert text == migrate(box.v1_text)[0]
    data = tomllib.loads(text)
    assert data["config_version"] == 2 and data["web"]["page_size"] == 40
    assert "# Edited on site by the technician: keep this comment.\n" in text
    assert "page_size = 40  # the front desk wants more\n" in text
    assert (box.root / "etc/callrec/callrec.toml.v1.bak").read_text() == box.v1_text
    assert "migrated: migrated config_version 1 -> 2" in box.second.stdout


def test_recordings_keys_and_certificate_are_byte_identical(box: Box) -> None:
    for path, (content, uid, gid, mode) in box.kept.items():
        st = path.stat()
        assert path.read_bytes() == content, path
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (uid, gid, mode), path
    assert re.search(r"kept: the \d+ files that were in /var/lib/callrec", box.second.stdout)
    assert "certificate /etc/callrec/tls/callrec.crt kept" in box.second.stdout


def test_ownerships_and_modes(box: Box) -> None:
    r = box.root
    assert _owner(r / "etc/callrec", r) == ("callrec", "callrec", 0o750)
    assert _owner(r / "etc/callrec/callrec.toml", r) == ("callrec", "callrec", 0o640)
    assert _owner(r / "etc/callrec/callrec.toml.v1.bak", r)[2] == 0o640
    assert _owner(r / "etc/callrec/tls", r) == ("root", "callrec", 0o750)
    assert _owner(r / "etc/callrec/tls/callrec.key", r) == ("root", "callrec", 0o640)
    assert _owner(r / "var/lib/callrec", r) == ("callrec", "callrec", 0o700)
    assert _owner(r / "var/log/callrec/install.log", r) == ("root", "adm", 0o640)
    members = {line.split(":")[0]: line.split(":")[3].split(",")
               for line in (r / "etc/group").read_text().splitlines()}
    for group in ("audio", "dialout", "gpio"):
        assert "callrec" in members[group], group
    assert "fixed owner/mode of /etc/callrec to callrec:callrec 0750" in box.second.stdout


def test_the_log_lists_every_step_with_timestamps(box: Box) -> None:
    log = (box.root / "var/log/callrec/install.log").read_text()
    runs = log.split("\n=== ")
    assert len(runs) == 3, "two runs, each with its header"
    for run, kind in zip(runs[1:], ("new install of callrec", "upgrade: callrec"), strict=True):
        steps = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ==> (.+)$", run, re.M)
        for wanted in ("Existing install", "System packages", "User callrec and groups",
                       "Python venv /opt/callrec", "Configuration /etc/callrec/callrec.toml",
                       "Data folder /var/lib/callrec and prompts",
                       "HTTPS certificate of the web UI", "systemd unit", "Done"):
            assert wanted in steps, (wanted, steps)
        assert kind in run
    upgrade = runs[2]
    assert "Data kept by the upgrade" in upgrade
    assert "migrated: migrated config_version 1 -> 2" in upgrade
    assert "kept as they are: /etc/callrec" in upgrade
