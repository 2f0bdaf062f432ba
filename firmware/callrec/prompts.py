"""Default consent prompts, spoken by espeak-ng and converted to the line's format by sox.

Run by the installer and by `callrec prompts generate`; never by the web layer.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

TEXTS = {
    "fr": (
        "Bonjour. Cet appel est susceptible d'être enregistré, pour la qualité de notre service "
        "et la preuve de nos échanges. Vous pouvez vous y opposer, et exercer vos droits, "
        "auprès de notre délégué à la protection des données."
    ),
    "en": (
        "Hello. This call may be recorded, for the quality of our service and as a record of "
        "our exchanges. You may object, and exercise your rights, by contacting our data "
        "protection officer."
    ),
}


# Said when callers can refuse with a key (privacy.refusal_key): a refusal right that the prompt
# does not mention is no right at all. "{key}" is the key's spoken name.
REFUSAL_TEXTS = {
    "fr": (
        " Si vous ne souhaitez pas que cet appel soit enregistré, appuyez maintenant sur la "
        "touche {key}."
    ),
    "en": " If you do not want this call to be recorded, press {key} now.",
}
KEY_NAMES = {
    "fr": {"*": "étoile", "#": "dièse"},
    "en": {"*": "star", "#": "hash"},
}


def prompt_text(lang: str, refusal_key: str = "") -> str:
    """The words of the default prompt in `lang`, with the refusal key when there is one."""
    text = TEXTS[lang]
    if refusal_key:
        key = KEY_NAMES[lang].get(refusal_key, refusal_key)
        text += REFUSAL_TEXTS[lang].format(key=key)
    return text


class PromptToolMissing(RuntimeError):
    pass


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PromptToolMissing(f"'{name}' is not installed (apt-get install {name})")
    return path


def synthesize(text: str, voice: str, out: Path, rate: int = 8000) -> None:
    """Speak `text` with espeak-ng and write mono 16-bit `rate` Hz WAV to `out`."""
    espeak, sox = _tool("espeak-ng"), _tool("sox")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", "150", "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        # Telephone band and a level that leaves headroom (-3 dBFS peak).
        subprocess.run(
            [
                sox,
                str(raw),
                "-r",
                str(rate),
                "-c",
                "1",
                "-b",
                "16",
                str(out),
                "highpass",
                "300",
                "lowpass",
                "3400",
                "gain",
                "-n",
                "-3",
            ],
            check=True,
            capture_output=True,
        )


def generate(
    directory: Path, rate: int = 8000, overwrite: bool = False, refusal_key: str = "9"
) -> list[Path]:
    """Write the default fr.wav and en.wav prompts into `directory`; returns what was written.
    `refusal_key` must be the configuration's privacy.refusal_key ("" if refusal is off)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for lang in TEXTS:
        out = directory / f"{lang}.wav"
        if out.exists() and not overwrite:
            continue
        synthesize(prompt_text(lang, refusal_key), lang, out, rate)
        written.append(out)
    return written
