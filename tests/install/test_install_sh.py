"""install.sh, tests/run.sh and .ci/run: syntax, options, and the --dev steps that need no apt/pip.

The --dev tests run install.sh in a temporary copy of the checkout with CALLREC_SKIP_APT=1,
CALLREC_SKIP_PIP=1 and a venv whose `callrec` is tests/install/stub_callrec.py, so they take
seconds and touch nothing outside the temporary folder.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from callrec.config import Config

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCRIPTS = ["install.sh", "tests/run.sh", ".ci/run"]


def load(path: Path) -> Config:
    """The daemon's own config loader (imported here: callrec's import group is ruff-ambiguous)."""
    from callrec.config import load as load_config

    return load_config(path)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLREC_", "PULSE_", "PA_"))}
    env.pop("ALSA_CONFIG_PATH", None)
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=_clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- Static checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_syntax(script: str) -> None:
    result = _run(["bash", "-n", script])
    assert result.returncode == 0, result.stderr


def test_shellcheck() -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed (./install.sh --dev --with-tests installs it)")
    result = _run(["shellcheck", "--external-sources", *SCRIPTS])
    assert result.returncode == 0, result.stdout + result.stderr


def test_help() -> None:
    result = _run(["bash", "install.sh", "--help"])
    assert result.returncode == 0, result.stderr
    for word in ("--dev", "--with-tests", "--run", "--uninstall", "--purge-recordings", "--yes"):
        assert word in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["--with-tests"],
        ["--run"],
        ["--config-only"],
        ["--purge-recordings"],
        ["--yes"],
        ["--dev", "--uninstall"],
        ["--dev", "--config-only", "--run"],
    ],
)
def test_bad_option_combinations_are_refused(args: list[str]) -> None:
    result = _run(["bash", "install.sh", *args])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "see --help" in result.stderr


def test_purge_without_yes_and_without_terminal_refuses() -> None:
    # Safe to run anywhere: the check comes before anything is touched (and as non-root, the
    # root check refuses even earlier).
    result = _run(["bash", "install.sh", "--uninstall", "--purge-recordings"])
    assert result.returncode == 1
    expected = "add --yes" if os.geteuid() == 0 else "needs root"
    assert expected in result.stderr


# --- --dev in a temporary copy ---------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what install.sh reads, plus a venv whose callrec is the stub."""
    repo = tmp_path / "repo"
    (repo / "hw").mkdir(parents=True)
    shutil.copy2(REPO / "install.sh", repo / "install.sh")
    shutil.copy2(REPO / "pyproject.toml", repo / "pyproject.toml")
    shutil.copytree(REPO / "systemd", repo / "systemd")
    for sub in ("config", "sim", "alsa", "udev"):
        shutil.copytree(REPO / "hw" / sub, repo / "hw" / sub)
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    # Wrappers, not symlinks: a symlinked venv python would not find its site-packages.
    (venv / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "callrec").write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "stub_callrec.py"}" "$@"\n'
    )
    for exe in venv.iterdir():
        exe.chmod(0o755)
    return repo


def _dev(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    settings = {
        "CALLREC_SKIP_APT": "1",
        "CALLREC_SKIP_PIP": "1",
        "CALLREC_VENV": str(repo.parent / "venv"),
    }
    settings.update(env)
    return _run(["bash", str(repo / "install.sh"), "--dev", *args], cwd=repo, **settings)


def test_dev_install_writes_a_sim_config_under_var(checkout: Path) -> None:
    result = _dev(checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    var = checkout / "var"
    cfg = load(var / "callrec.toml")
    assert cfg.board.backend == "sim"
    assert cfg.board.serial_port == str(var / "run" / "sim-serial")
    assert cfg.board.sim_socket == str(var / "run" / "sim.sock")
    assert cfg.runtime_dir == str(var / "run")
    assert cfg.storage.data_dir == str(var / "data")
    assert cfg.announcement.directory == str(var / "data" / "prompts")
    assert (cfg.web.host, cfg.web.port) == ("127.0.0.1", 8080)
    assert (var / "callrec.toml").stat().st_mode & 0o777 == 0o600
    for stem in ("fr", "en"):
        assert (var / "data" / "prompts" / f"{stem}.wav").stat().st_size > 0
    assert (var / "log" / "install.log").read_text().count("==> Prompts") == 1


def test_dev_install_is_idempotent(checkout: Path) -> None:
    first = _dev(checkout)
    assert first.returncode == 0, first.stdout + first.stderr
    config = checkout / "var" / "callrec.toml"
    prompt = checkout / "var" / "data" / "prompts" / "fr.wav"
    before = (config.read_bytes(), config.stat().st_mtime_ns, prompt.stat().st_mtime_ns)
    second = _dev(checkout)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (config.read_bytes(), config.stat().st_mtime_ns, prompt.stat().st_mtime_ns) == before
    assert "unchanged" in second.stdout
    assert "not regenerated" in second.stdout


def test_dev_install_keeps_an_edited_config(checkout: Path) -> None:
    assert _dev(checkout).returncode == 0
    config = checkout / "var" / "callrec.toml"
    edited = config.read_text().replace("page_size = 25", "page_size = 50")
    config.write_text(edited)
    result = _dev(checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert config.read_text() == edited
    assert "kept as it is" in result.stdout
    assert "page_size = 25" in (checkout / "var" / "callrec.toml.example").read_text()


def test_dev_config_only_needs_no_venv(checkout: Path) -> None:
    result = _dev(checkout, "--config-only", CALLREC_VENV=str(checkout / "no-venv"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert load(checkout / "var" / "callrec.toml").board.backend == "sim"
    assert not (checkout / "var" / "data" / "prompts" / "fr.wav").exists()
    assert "System packages" not in result.stdout


def test_dev_refuses_a_venv_without_callrec_when_pip_is_skipped(checkout: Path) -> None:
    result = _dev(checkout, CALLREC_VENV=str(checkout / "no-venv"))
    assert result.returncode == 1
    assert "CALLREC_SKIP_PIP=1 but" in result.stderr


# --- --dev --run: starts the simulated appliance and stops exactly what it started -------------

needs_pulseaudio = pytest.mark.skipif(
    not (shutil.which("pulseaudio") and shutil.which("pactl")),
    reason="pulseaudio/pactl not installed (./install.sh --dev installs them)",
)


@pytest.fixture
def run_checkout(checkout: Path) -> Iterator[Path]:
    """A dev checkout whose config uses a free port; PulseAudio is stopped even if a test fails."""
    assert _dev(checkout, "--config-only").returncode == 0
    config = checkout / "var" / "callrec.toml"
    config.write_text(config.read_text().replace("port = 8080", f"port = {_free_port()}"))
    yield checkout
    pulse = checkout / "var" / "pulse"
    if pulse.exists():
        subprocess.run(
            [str(checkout / "hw" / "sim" / "pulse-line.sh"), "down"],
            env=_clean_env(PA_DIR=str(pulse)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )


def _stub_pids(repo: Path) -> dict[str, int]:
    run_dir = repo / "var" / "run"
    return {p.stem: int(p.read_text()) for p in run_dir.glob("stub-*.pid")}


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while marker not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                break
            if sel.select(timeout=min(left, 0.5)):
                line = proc.stdout.readline()
                if not line:
                    break
                seen += line
    return seen


@needs_pulseaudio
def test_dev_run_starts_everything_and_ctrl_c_stops_it(run_checkout: Path) -> None:
    repo = run_checkout
    settings = {
        "CALLREC_SKIP_APT": "1",
        "CALLREC_SKIP_PIP": "1",
        "CALLREC_VENV": str(repo.parent / "venv"),
    }
    proc = subprocess.Popen(
        ["bash", str(repo / "install.sh"), "--dev", "--run"],
        cwd=repo,
        env=_clean_env(**settings),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal
    )
    try:
        # Generous: on a loaded CI machine the dev install (a pip check, PulseAudio) is slow.
        seen = _read_until(proc, "placing calls", timeout=180)
        assert "Setup code:  STUB-SETUP-CODE" in seen, seen
        assert "Web UI:      http://127.0.0.1:" in seen, seen
        pids = _stub_pids(repo)
        assert set(pids) == {"stub-sim-line", "stub-run", "stub-sim-demo"}, seen
        assert all(_alive(pid) for pid in pids.values())
        assert (repo / "var" / "pulse" / "env.sh").exists()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        # Stopping is bounded by install.sh itself (10 s per process, then SIGKILL; PulseAudio):
        # generous for a loaded CI machine.
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, seen + rest
    assert "stopped callrec sim demo" in rest
    assert "stopped PulseAudio" in rest
    assert not any(_alive(pid) for pid in pids.values()), rest
    assert not (repo / "var" / "pulse").exists()
    assert not (repo / "var" / "run" / "sim-serial").exists()


@needs_pulseaudio
def test_dev_run_stops_what_it_started_when_the_daemon_fails(run_checkout: Path) -> None:
    repo = run_checkout
    result = _dev(repo, "--run", STUB_CALLREC_FAIL="run")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the web UI did not answer" in result.stderr
    assert "stopped callrec sim line" in result.stdout
    assert "stopped PulseAudio" in result.stdout
    sim = _stub_pids(repo)
    assert not any(_alive(pid) for pid in sim.values())
    assert not (repo / "var" / "pulse").exists()


# --- tests/run.sh: exit codes and summary, with a fake venv ----------------------------------


@pytest.fixture
def fake_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "tests").mkdir(parents=True)
    shutil.copy2(REPO / "tests" / "run.sh", tree / "tests" / "run.sh")
    bin_dir = tree / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "ruff").write_text('#!/bin/sh\necho "fake ruff $*"\nexit "${FAKE_RUFF_RC:-0}"\n')
    (bin_dir / "mypy").write_text('#!/bin/sh\necho "fake mypy"\nexit "${FAKE_MYPY_RC:-0}"\n')
    (bin_dir / "python").write_text(
        "#!/bin/sh\n"
        'echo "fake pytest args: $*"\n'
        'if [ "${FAKE_PYTEST_RC:-0}" = 5 ]; then echo "no tests ran in 0.01s"; '
        'else echo "3 passed, 1 failed, 2 skipped in 0.05s"; fi\n'
        'exit "${FAKE_PYTEST_RC:-0}"\n'
    )
    (tree / "install.sh").write_text(
        '#!/bin/sh\necho "fake install $*"\nexit "${FAKE_INSTALL_RC:-0}"\n'
    )
    for exe in [*bin_dir.iterdir(), tree / "install.sh"]:
        exe.chmod(0o755)
    return tree


def _tests_run(tree: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(["bash", str(tree / "tests" / "run.sh"), *args], cwd=tree, **env)


def test_run_sh_passes_and_forwards_pytest_arguments(fake_tree: Path) -> None:
    result = _tests_run(fake_tree, "-k", "web")
    assert result.returncode == 0, result.stdout
    assert "fake install --dev --with-tests" in result.stdout
    assert "fake pytest args: -m pytest -q -k web" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "pytest: 3 passed, 1 failed, 2 skipped"


@pytest.mark.parametrize(
    ("env", "verdict"),
    [
        ({"FAKE_PYTEST_RC": "1"}, "FAILED (pytest exit 1)"),
        ({"FAKE_PYTEST_RC": "5"}, "no tests were collected"),
        ({"FAKE_RUFF_RC": "1"}, "ruff     FAILED (exit 1)"),
        ({"FAKE_MYPY_RC": "2"}, "mypy     FAILED (exit 2)"),
    ],
)
def test_run_sh_fails_when_a_step_fails(fake_tree: Path, env: dict[str, str], verdict: str) -> None:
    result = _tests_run(fake_tree, **env)
    assert result.returncode != 0, result.stdout
    assert verdict in result.stdout
    assert "RESULT: FAILED" in result.stdout


def test_run_sh_stops_when_the_install_fails(fake_tree: Path) -> None:
    result = _tests_run(fake_tree, FAKE_INSTALL_RC="7")
    assert result.returncode == 7, result.stdout
    assert "fake pytest" not in result.stdout
    assert "install  FAILED (exit 7)" in result.stdout


def test_ci_run_execs_tests_run() -> None:
    text = (REPO / ".ci" / "run").read_text()
    assert text.startswith("#!/bin/bash\n")
    assert "exec bash tests/run.sh" in text
