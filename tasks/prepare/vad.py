"""Speech and pauses with silero-vad (its model ships in the wheel).

>>> import numpy as np
>>> speech_regions(np.zeros(32000, dtype=np.float32), 32000)
[]
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import soxr

VAD_RATE_HZ = 16000
_LOCK = threading.Lock()  # the silero model keeps recurrent state between calls: one caller at a time


@lru_cache(maxsize=1)
def _model():
    from silero_vad import load_silero_vad

    return load_silero_vad(onnx=False)


def speech_regions(
    audio: np.ndarray, sr_hz: int, *, threshold: float = 0.5, min_silence_s: float = 0.25, pad_s: float = 0.05
) -> list[tuple[float, float]]:
    """Speech regions ``[(start_s, end_s), ...]`` of mono ``audio``; pauses are what lies between."""
    import torch
    from silero_vad import get_speech_timestamps

    if len(audio) < sr_hz * 0.1:
        return []
    x16 = soxr.resample(audio.astype(np.float32), sr_hz, VAD_RATE_HZ) if sr_hz != VAD_RATE_HZ else audio
    peak = float(np.max(np.abs(x16))) if len(x16) else 0.0
    if peak < 1e-4:
        return []
    with _LOCK, torch.no_grad():
        stamps = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(x16, dtype=np.float32)),
            _model(),
            sampling_rate=VAD_RATE_HZ,
            threshold=threshold,
            min_silence_duration_ms=int(min_silence_s * 1000),
            speech_pad_ms=int(pad_s * 1000),
        )
    return [(s["start"] / VAD_RATE_HZ, s["end"] / VAD_RATE_HZ) for s in stamps]


def to_mask(regions: list[tuple[float, float]], n: int, sr_hz: int) -> np.ndarray:
    """A boolean per-sample mask, True inside the regions."""
    mask = np.zeros(n, dtype=bool)
    for start, end in regions:
        mask[int(start * sr_hz) : min(n, int(end * sr_hz))] = True
    return mask
