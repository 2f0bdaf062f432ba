from __future__ import annotations

import hashlib
import threading
import time
import wave
from pathlib import Path

import pytest

from callrec.announcement import AnnouncementPlayer, PromptError, load_prompt


def write_prompt(path: Path, rate: int = 8000, channels: int = 1, frames: int = 1600) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x10\x00" * frames * channels)


def test_prompt_carries_its_hash(tmp_path: Path) -> None:
    write_prompt(tmp_path / "fr.wav")
    prompt = load_prompt(tmp_path, "fr", 8000)
    assert prompt.sha256 == hashlib.sha256((tmp_path / "fr.wav").read_bytes()).hexdigest()
    assert prompt.seconds == 0.2


@pytest.mark.parametrize(("rate", "channels", "message"), [
    (16000, 1, "16000 Hz"), (8000, 2, "2 channel"),
])
def test_prompt_in_the_wrong_format_is_refused(tmp_path, rate, channels, message) -> None:
    write_prompt(tmp_path / "fr.wav", rate, channels)
    with pytest.raises(PromptError, match=message):
        load_prompt(tmp_path, "fr", 8000)


def test_missing_or_garbage_prompt(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="missing"):
        load_prompt(tmp_path, "fr", 8000)
    (tmp_path / "en.wav").write_bytes(b"not a wav")
    with pytest.raises(PromptError, match="unreadable"):
        load_prompt(tmp_path, "en", 8000)


class Collect:
    def __init__(self, fail_after: int | None = None) -> None:
        self.chunks: list[bytes] = []
        self.fail_after = fail_after

    def write(self, pcm: bytes) -> None:
        if self.fail_after is not None and len(self.chunks) >= self.fail_after:
            raise OSError("device unplugged")
        self.chunks.append(pcm)


def play(tmp_path: Path, out: Collect) -> tuple[bool, str, object]:
    write_prompt(tmp_path / "fr.wav", frames=8000)
    prompt = load_prompt(tmp_path, "fr", 8000)
    done = threading.Event()
    result: list = []
    player = AnnouncementPlayer(out)
    proof = player.play(prompt, lambda ok, err: (result.extend([ok, err]), done.set()))
    assert done.wait(5)
    return result[0], result[1], proof


def test_player_writes_the_whole_prompt_and_proves_it(tmp_path: Path) -> None:
    out = Collect()
    ok, err, proof = play(tmp_path, out)
    assert ok and err == ""
    assert b"".join(out.chunks) == load_prompt(tmp_path, "fr", 8000).pcm
    assert proof.completed and proof.started_at and proof.first_frame_at > 0


def test_player_reports_a_device_failure(tmp_path: Path) -> None:
    ok, err, proof = play(tmp_path, Collect(fail_after=3))
    assert not ok and "device unplugged" in err
    assert not proof.completed


class Blocking(Collect):
    """An output whose first write blocks until released (a stalled device)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, pcm: bytes) -> None:
        if not self.chunks:
            self.release.wait(5)
        super().write(pcm)


def test_a_stalled_old_prompt_never_resumes_after_a_restart(tmp_path: Path) -> None:
    write_prompt(tmp_path / "fr.wav", frames=8000)
    prompt = load_prompt(tmp_path, "fr", 8000)
    out = Blocking()
    player = AnnouncementPlayer(out)
    first: list[bool] = []
    player.play(prompt, lambda ok, err: first.append(ok))
    time.sleep(0.1)  # the first playback is stuck in its first write
    threading.Timer(2.5, out.release.set).start()  # released after stop() gave up waiting
    done = threading.Event()
    player.play(prompt, lambda ok, err: done.set())
    assert done.wait(10)
    time.sleep(0.3)
    assert first == []  # the old playback neither completed nor reported
    assert len(b"".join(out.chunks)) <= len(prompt.pcm) + 320  # at most its stuck chunk
