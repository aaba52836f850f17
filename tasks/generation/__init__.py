"""Generation: approved exhibit texts into finished clips, checked, loud enough, watermarked, signed.

Takes queued ``exhibit_requests`` rows, a :class:`Voice` (the bearer's active model, handed in by the caller,
since voices live in ``voice_models``) and the site's watermark key (and signer, where the site has one);
gives ``exhibits/<exhibit_id>/<clip_id>.<format>`` with its manifest beside it, ``clips`` rows and
``generation`` events, or texts marked failed with the reason and the figures.

- :mod:`tasks.generation.render`: speaking a text a sentence at a time, loudness, the watermark.
- :mod:`tasks.generation.check`: the clip check (voice share, speaking rate, ASR word error rate).
- :mod:`tasks.generation.encode`: WAV, FLAC, MP3, M4A and Opus with the credit line and disclosure tags.
- :mod:`tasks.generation.clips`: one text's whole path, the cache, and consent checked before and after.
"""

from tasks.generation.check import CheckLimits, CheckResult, Transcribe, check_clip
from tasks.generation.clips import (
    TRIES,
    Sign,
    Voice,
    cache_key,
    clip_key,
    fail_texts,
    generate_text,
    queued,
    requeue,
)
from tasks.generation.encode import encode
from tasks.generation.render import DELIVERY_RATE_HZ, Synthesizer, split_text

__all__ = [
    "DELIVERY_RATE_HZ",
    "TRIES",
    "CheckLimits",
    "CheckResult",
    "Sign",
    "Synthesizer",
    "Transcribe",
    "Voice",
    "cache_key",
    "check_clip",
    "clip_key",
    "encode",
    "fail_texts",
    "generate_text",
    "queued",
    "requeue",
    "split_text",
]
