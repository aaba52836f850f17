"""Probing and validating audio: every format archives receive, and every kind of damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heirloom.errors import AudioReadError
from tasks.audio.probe import probe_audio
from tests.audio_factory import sinusoid, write_audio


@pytest.mark.parametrize(
    ("fmt", "codec", "bits"),
    [
        ("wav", "pcm_16", 16),
        ("flac", "pcm_24", 24),
        ("mp3", "mpeg_layer_iii", None),
        ("ogg", "vorbis", None),
        ("m4a", "aac", None),
        ("opus", "opus", None),
    ],
)
def test_formats_probe(tmp_path: Path, fmt: str, codec: str, bits: int | None) -> None:
    path = write_audio(tmp_path / f"x.{fmt}", fmt=fmt, sr_hz=48000, duration_s=1.0, channels=2)
    info = probe_audio(path)
    assert info.codec == codec and info.ext == fmt and info.bit_depth == bits
    assert info.channels == 2 and info.sample_rate == 48000
    assert info.duration_s == pytest.approx(1.0, abs=0.1)


def test_bwf_is_recognised(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "x.wav")
    data = bytearray(path.read_bytes())
    bext = b"bext" + (8).to_bytes(4, "little") + b"heirloom"
    riff = bytes(data[:12]) + bext + bytes(data[12:])
    riff = riff[:4] + (len(riff) - 8).to_bytes(4, "little") + riff[8:]
    path.write_bytes(riff)
    info = probe_audio(path)
    assert info.format == "bwf" and info.ext == "wav"


def _wav_bytes(tmp_path: Path) -> bytes:
    return write_audio(tmp_path / "src.wav", duration_s=1.0).read_bytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, wav: p.write_bytes(b""), "empty file"),
        (lambda p, wav: p.write_bytes(wav[: len(wav) // 2]), "truncated"),
        (lambda p, wav: p.write_text("hello, I am a text file"), "not a readable audio file"),
        (lambda p, wav: p.write_bytes(wav[:24] + (1).to_bytes(4, "little") + wav[28:]), "sample rate 1 Hz"),
        (lambda p, wav: p.write_bytes(wav[:22] + (200).to_bytes(2, "little") + wav[24:]), "channels"),
        (lambda p, wav: p.write_bytes(wav[:20] + (0x3039).to_bytes(2, "little") + wav[22:]), "undecodable"),
        (lambda p, wav: p.write_bytes(wav[:44]), "no audio frames|truncated"),
    ],
    ids=["empty", "truncated", "text", "absurd-rate", "absurd-channels", "unknown-codec", "header-only"],
)
def test_damage_is_refused_with_a_reason(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "bad.wav"
    make(path, _wav_bytes(tmp_path))
    with pytest.raises(AudioReadError, match=message) as e:
        probe_audio(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_refused(tmp_path: Path, bad: float) -> None:
    x = sinusoid(duration_s=1.0)
    x[12345 % len(x)] = bad
    sf.write(str(tmp_path / "f.wav"), x, 16000, subtype="FLOAT")
    with pytest.raises(AudioReadError, match="NaN or infinite sample near frame 12345"):
        probe_audio(tmp_path / "f.wav")


def test_truncated_flac_and_m4a(tmp_path: Path) -> None:
    for fmt in ("flac", "m4a"):
        path = write_audio(tmp_path / f"x.{fmt}", fmt=fmt, duration_s=2.0)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        with pytest.raises(AudioReadError):
            probe_audio(path)


def test_probe_does_not_modify_the_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "x.flac", fmt="flac")
    before = path.read_bytes()
    probe_audio(path)
    assert path.read_bytes() == before
