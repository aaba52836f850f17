"""Prepare: an original into a working copy fit for alignment and training, measured and gated.

Takes an original (never altered) and :class:`PrepareParams`; gives ``working/<recording_id>/<params>.flac``
(32 kHz mono, 24-bit) with a ``.segments.json`` of utterances and the time map back to the original, and a
``derivatives`` row with metrics, the gate's verdict and reasons.

- :mod:`tasks.prepare.chain`: the streaming chain over one file (decode, mono, DC blocker, resampling, then
  the measures and processing below) and :class:`PrepareParams`.
- :mod:`tasks.prepare.vad`: speech and pauses (silero-vad).
- :mod:`tasks.prepare.content`: speech or song, told by held notes.
- :mod:`tasks.prepare.noise`: the noise profile from the pauses, and the SNR.
- :mod:`tasks.prepare.hum`: 50/60 Hz hum found in the pauses, and the notch comb that removes it.
- :mod:`tasks.prepare.denoise`: which denoiser, if any (DeepFilterNet3, noisereduce), and running it.
- :mod:`tasks.prepare.loudness`: loudness on voice only, true peak, the gain plan.
- :mod:`tasks.prepare.quality`: clipping, dropouts, clicks, bandwidth, DNSMOS, and the gate (:class:`GateConfig`).
- :mod:`tasks.prepare.working_copies`: which recordings still need a copy, making one with its catalog row.
"""

from tasks.prepare.chain import WORK_RATE_HZ, PrepareParams, TimeMap, prepare_file
from tasks.prepare.loudness import MAX_TRUE_PEAK_DBTP, plan_gain, speech_loudness, true_peak_dbtp
from tasks.prepare.quality import GateConfig, dnsmos, gate
from tasks.prepare.vad import speech_regions
from tasks.prepare.working_copies import commit_derivatives, pending_recordings, prepare_recording

__all__ = [
    "MAX_TRUE_PEAK_DBTP",
    "WORK_RATE_HZ",
    "GateConfig",
    "PrepareParams",
    "TimeMap",
    "commit_derivatives",
    "dnsmos",
    "gate",
    "pending_recordings",
    "plan_gain",
    "prepare_file",
    "prepare_recording",
    "speech_loudness",
    "speech_regions",
    "true_peak_dbtp",
]
