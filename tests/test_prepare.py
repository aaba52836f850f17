"""Audio preparation: each step on small generated signals, the whole chain, streaming, and the flow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from tasks.prepare.chain import PrepareParams, TimeMap, prepare_file
from tasks.prepare.content import HELD_SHARE_SONG, HeldNotes, held_note_share, pitch_frames
from tasks.prepare.denoise import choose_denoiser, deepfilter, reduce_noise
from tasks.prepare.hum import NotchComb, detect_hum
from tasks.prepare.loudness import plan_gain, speech_loudness, true_peak_dbtp
from tasks.prepare.noise import NoiseEstimate, estimate_noise, frame_power
from tasks.prepare.quality import ClipTracker, DropoutTracker, GateConfig, click_positions, gate
from tasks.prepare.vad import speech_regions

SR = 32000


def speech(
    tmp_path: Path, text: str = "The water is wide, I cannot get over, and neither have I wings to fly."
) -> tuple[np.ndarray, int]:
    wav = tmp_path / "tts.wav"
    subprocess.run(["espeak-ng", "-v", "en-gb-scotland", "-w", str(wav), text], check=True, capture_output=True)
    x, sr = sf.read(str(wav), dtype="float32")
    return x, sr


def band(x: np.ndarray, f: float, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[(freqs > f - 2) & (freqs < f + 2)].sum())


def test_hum_is_found_and_removed() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(SR * 4) / SR
    hum = sum(0.03 / k * np.sin(2 * np.pi * 50 * k * t) for k in (1, 2, 3))
    x = (hum + rng.normal(0, 0.002, len(t))).astype(np.float32)
    found = detect_hum(x, SR)
    assert found.f0_hz == 50 and {1, 2, 3} <= set(found.harmonics)
    y = NotchComb(found, SR)(x)
    for k in (1, 2, 3):
        assert band(y[SR:], 50 * k) < band(x[SR:], 50 * k) * 10 ** (-20 / 10)
    assert not detect_hum(rng.normal(0, 0.01, SR * 4).astype(np.float32), SR).found


def test_a_lone_overtone_is_not_taken_for_hum() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(SR * 4) / SR
    x = (0.02 * np.sin(2 * np.pi * 100 * t) + rng.normal(0, 0.002, len(t))).astype(np.float32)
    assert not detect_hum(x, SR).found


def sung(notes_hz: list[float], note_s: float = 0.6, rate: int = SR) -> np.ndarray:
    """Held notes with a 5.5 Hz vibrato of +-30 cents and a few harmonics, a short gap between them."""
    out = []
    for f in notes_hz:
        t = np.arange(int(note_s * rate)) / rate
        inst = f * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(inst) / rate
        tone = sum(np.sin(k * phase) / k for k in range(1, 6)) * np.hanning(len(t)) ** 0.2
        out += [0.2 * tone, np.zeros(rate // 20)]
    return np.concatenate(out).astype(np.float32)


def test_held_notes_tell_song_from_speech(tmp_path: Path) -> None:
    song = sung([196, 262, 262, 294, 330, 294, 262, 220, 196, 262, 262])
    assert held_note_share(*pitch_frames(song, SR)) >= HELD_SHARE_SONG
    x, sr = speech(tmp_path)
    assert held_note_share(*pitch_frames(x, sr)) < HELD_SHARE_SONG
    notes = HeldNotes(SR)
    for i in range(0, len(song), SR):
        notes.add(song[i : i + SR])
    assert notes.share() >= HELD_SHARE_SONG
    assert held_note_share(*pitch_frames(np.zeros(SR, np.float32), SR)) == 0.0


def test_noisy_song_gets_gentle_gating_not_deepfilternet(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    song = sung([196, 262, 294, 330, 294, 262, 220, 196] * 2)
    mix = np.concatenate([np.zeros(SR), song, np.zeros(SR)])
    mix = (mix + rng.normal(0, 0.01, len(mix))).astype(np.float32)
    sf.write(str(tmp_path / "song.wav"), mix, SR)
    m = prepare_file(tmp_path / "song.wav", tmp_path / "w.flac").metrics
    assert m["content"] == "song" and m["denoise"]["method"] == "noisereduce"
    assert m["speech_s"] > 0.8 * len(song) / SR  # sung notes count as voice though silero-vad misses them


def test_clipping_is_flagged_even_after_attenuation() -> None:
    t = np.arange(SR * 2) / SR
    sine = 0.9 * np.sin(2 * np.pi * 220 * t)
    clipped = (np.clip(sine, -0.6, 0.6) * 0.5).astype(np.float32)  # clipped, then turned down
    tracker = ClipTracker()
    for i in range(0, len(clipped), 4000):
        tracker.update(clipped[i : i + 4000, None])
    assert tracker.ratio > 0.1
    clean = ClipTracker()
    clean.update(sine.astype(np.float32)[:, None])
    assert clean.ratio == 0.0


def test_dropout_is_found_but_leading_silence_is_not() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.1, SR * 2).astype(np.float32)
    x[: SR // 4] = 0.0  # digital pre-roll
    x[SR : SR + 640] = 0.0  # 20 ms lost
    tracker = DropoutTracker(SR)
    for i in range(0, len(x), 7000):
        tracker.update(x[i : i + 7000])
    assert tracker.dropouts == [pytest.approx(1.0)]


def test_clicks_in_pauses_are_counted() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.005, SR * 5).astype(np.float32)
    for p in (SR, 2 * SR, 3 * SR):
        x[p] += 0.3
    assert len(click_positions(x, SR)) == 3


def test_noise_profile_ignores_digital_silence_and_transients() -> None:
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 0.01, SR * 6).astype(np.float32)
    x = noise.copy()
    x[:SR] = 0.0  # digital silence
    x[2 * SR : 2 * SR + 320] += 0.8  # a thump
    speech_part = np.zeros(len(x), bool)
    speech_part[4 * SR :] = True
    x[4 * SR :] += (0.1 * np.sin(2 * np.pi * 200 * np.arange(2 * SR) / SR)).astype(np.float32)
    power = frame_power(x, SR)
    flags = speech_part[:: int(0.02 * SR)][: len(power)]
    est = estimate_noise(power, flags)
    assert est.noise_power == pytest.approx(0.01**2, rel=0.1)
    assert est.silence_frames >= 49 and est.left_out_frames >= 1
    true_snr = 10 * np.log10((0.1**2 / 2) / 0.01**2)
    assert abs(est.snr_db - true_snr) < 1.0


def test_loudness_gain_is_capped_by_true_peak() -> None:
    assert plan_gain(-30.0, -12.0, target_lufs=-20.0).gain_db == pytest.approx(10.0)
    capped = plan_gain(-30.0, -5.0, target_lufs=-20.0)
    assert capped.capped and capped.gain_db == pytest.approx(4.0)
    assert true_peak_dbtp(np.zeros(10, np.float32), SR) == float("-inf")


def test_denoisers_do_not_mutate_and_skip_clean() -> None:
    rng = np.random.default_rng(5)
    x = (0.2 * np.sin(2 * np.pi * 300 * np.arange(SR * 2) / SR) + rng.normal(0, 0.02, SR * 2)).astype(np.float32)
    before = x.copy()
    assert len(deepfilter(x, SR)) == len(x)
    assert len(reduce_noise(x, SR, noise_clip=rng.normal(0, 0.02, SR).astype(np.float32), prop_decrease=0.8)) == len(x)
    np.testing.assert_array_equal(x, before)
    assert choose_denoiser(40.0, "speech").method == "none"
    assert choose_denoiser(12.0, "speech").method == "deepfilternet3"
    song = choose_denoiser(12.0, "song")
    assert (
        song.method == "noisereduce"
        and song.prop_decrease < choose_denoiser(12.0, "speech", prefer="noisereduce").prop_decrease
    )


@given(st.sampled_from([8000, 16000, 22050, 44100, 48000, 96000]), st.integers(0, 10**9), st.floats(0, 3600))
def test_time_map_inverts(original_rate: int, working_sample: int, offset_s: float) -> None:
    tmap = TimeMap(original_rate, offset_s=offset_s)
    assert tmap.to_working_sample(tmap.to_original_s(working_sample)) == working_sample


def test_whole_chain_on_noisy_speech_lands_on_loudness_target(tmp_path: Path) -> None:
    x, sr = speech(tmp_path)
    rng = np.random.default_rng(6)
    t = np.arange(len(x) + 2 * sr) / sr
    mix = (
        np.concatenate([np.zeros(sr), x * 0.3, np.zeros(sr)])
        + 0.02 * np.sin(2 * np.pi * 50 * t)
        + rng.normal(0, 0.01, len(t))
    )
    src = tmp_path / "field.wav"
    sf.write(str(src), mix.astype(np.float32), sr, subtype="PCM_24")
    before = src.read_bytes()
    result = prepare_file(src, tmp_path / "work.flac", PrepareParams())
    assert src.read_bytes() == before
    out, out_sr = sf.read(str(tmp_path / "work.flac"), dtype="float32")
    assert out_sr == 32000 and abs(len(out) / out_sr - len(mix) / sr) < 0.01
    m = result.metrics
    assert m["hum"]["f0_hz"] == 50 and m["denoise"]["method"] == "deepfilternet3"
    pieces = [out[s.start_sample : s.end_sample] for s in result.segments]
    assert not m["loudness"]["gain_capped"]
    assert abs(speech_loudness(pieces, out_sr) - (-23.0)) < 0.5
    assert true_peak_dbtp(out, out_sr) <= -1.0 + 0.1
    assert result.segments and all(s.original_end_s <= len(mix) / sr + 0.01 for s in result.segments)
    assert speech_regions(out, out_sr)


@pytest.mark.parametrize("kind", ["silence", "empty-noise"])
def test_silent_or_all_noise_recordings_fail_the_gate(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(7)
    x = np.zeros(SR * 3, np.float32) if kind == "silence" else rng.normal(0, 0.05, SR * 3).astype(np.float32)
    sf.write(str(tmp_path / "x.wav"), x, SR)
    result = prepare_file(tmp_path / "x.wav", tmp_path / "w.flac")
    assert result.gate == "fail" and "no speech found" in result.gate_reasons[0]


def test_block_and_whole_file_processing_agree(tmp_path: Path) -> None:
    x, sr = speech(tmp_path, "As I roved out one morning fair, all in the springtime of the year. " * 2)
    rng = np.random.default_rng(8)
    mix = (np.concatenate([x, np.zeros(sr // 2), x]) * 0.4 + rng.normal(0, 0.01, 2 * len(x) + sr // 2)).astype(
        np.float32
    )
    sf.write(str(tmp_path / "in.wav"), mix, sr)
    whole = prepare_file(tmp_path / "in.wav", tmp_path / "whole.flac", PrepareParams(block_s=600))
    blocks = prepare_file(tmp_path / "in.wav", tmp_path / "blocks.flac", PrepareParams(block_s=3))
    a, _ = sf.read(str(tmp_path / "whole.flac"), dtype="float32")
    b, _ = sf.read(str(tmp_path / "blocks.flac"), dtype="float32")
    assert len(a) == len(b)
    gain_diff = whole.metrics["loudness"]["gain_db"] - blocks.metrics["loudness"]["gain_db"]
    assert abs(gain_diff) < 0.5
    b_matched = b * 10 ** (gain_diff / 20)
    assert np.corrcoef(a, b_matched)[0, 1] > 0.99
    assert abs(whole.metrics["snr_db"] - blocks.metrics["snr_db"]) < 1.5


def test_gate_reasons() -> None:
    cfg = GateConfig()
    ok = {
        "speech_s": 5,
        "speech_ratio": 0.5,
        "clipping_ratio": 0.0,
        "dropouts_s": [],
        "snr_db": 25,
        "bandwidth_hz": 8000,
    }
    assert gate(ok, cfg).result == "pass"
    assert gate({**ok, "clipping_ratio": 0.01}, cfg).result == "fail"
    assert gate({**ok, "dropouts_s": [1.2]}, cfg).reasons[0].startswith("1 dropout")
    assert gate({**ok, "snr_db": 5}, cfg).result == "fail"
    assert gate({**ok, "bandwidth_hz": 3400}, cfg).result == "review"
    no_pause = NoiseEstimate(0.0, 0.1, pause_frames=0, silence_frames=0, left_out_frames=0)
    assert not no_pause.measurable
    unmeasured = gate({**ok, "snr_db": None}, cfg)
    assert unmeasured.result == "review" and unmeasured.reasons[0].startswith("SNR not measurable")
    assert gate({**ok, "dnsmos": {"ovrl": 2.0}}, cfg).result == "review"


def _si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    alpha = np.dot(est, ref) / np.dot(ref, ref)
    return float(10 * np.log10(np.sum((alpha * ref) ** 2) / np.sum((est - alpha * ref) ** 2)))


def test_rumble_is_high_passed_under_the_voice_without_touching_it(tmp_path: Path) -> None:
    from scipy import signal

    from tasks.prepare.rumble import detect_rumble

    x, sr = speech(tmp_path)
    x = soxr_to(x, sr)
    clean = np.concatenate([np.zeros(SR), x, np.zeros(SR // 2), x, np.zeros(SR // 2)]).astype(np.float32) * 0.5
    rng = np.random.default_rng(5)
    brown = np.cumsum(rng.normal(size=len(clean)))
    rumble = signal.sosfiltfilt(signal.butter(4, 150, fs=SR, output="sos"), brown - brown.mean())
    rumble *= np.sqrt(np.mean(clean[clean != 0] ** 2) / np.mean(rumble**2))  # 0 dB
    noisy = (clean + rumble).astype(np.float32)
    assert not detect_rumble(rng.normal(0, 0.01, SR).astype(np.float32), lambda: x, SR).found  # hiss: no rumble
    sf.write(tmp_path / "rumble.wav", noisy, SR, subtype="FLOAT")
    result = prepare_file(tmp_path / "rumble.wav", tmp_path / "out.flac", PrepareParams(denoiser="none"))
    found = result.metrics["rumble"]
    assert found["found"] and 40 <= found["high_pass_hz"] <= 120 and found["voice_low_hz"] > 60
    y, _ = sf.read(tmp_path / "out.flac", dtype="float32")
    assert _si_sdr(clean, y) > _si_sdr(clean, noisy) + 10  # zero phase: the voice keeps its waveform
    sf.write(tmp_path / "clean.wav", clean, SR, subtype="FLOAT")
    untouched = prepare_file(tmp_path / "clean.wav", tmp_path / "clean.flac", PrepareParams(denoiser="none"))
    assert not untouched.metrics["rumble"]["found"]


def soxr_to(x: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return soxr.resample(x, sr, SR).astype(np.float32)
