"""The demo's voices: a synthesiser that writes nothing (festival without a voice) is a clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from heirloom.errors import HeirloomError
from tasks.demo_collection import DemoVoice, synthesize


def test_a_festival_without_its_voice_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "text2wave").write_text("#!/bin/sh\ncat > /dev/null\nexit 0\n")  # as festival does with no voice
    (bin_dir / "text2wave").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    voice = DemoVoice("b-kansas", "festival", "voice_kal_diphone", "en-us")
    with pytest.raises(HeirloomError, match="wrote no audio for voice voice_kal_diphone.*festvox-kallpc16k"):
        synthesize(voice, "The water is wide.", tmp_path / "out.wav")
