"""heirloom's payload watermark: 32 bits with a key-seeded CRC-24 and a rate-1/3 convolutional code, spread
over a key-chosen grid of time-frequency cells, found again after codecs, resampling, noise, crops, speed and
tempo changes, and a phone in a hall. Written in torch, so embedding and detection run on GPU or CPU alike.

Takes audio, a payload and the site's key; gives marked audio, and from any copy of it the payload with a
confidence (or "no watermark"), and the ``clips`` rows that carry that payload.

- :mod:`tasks.watermark.layout`: the cell grid, features and the key-chosen patterns.
- :mod:`tasks.watermark.keys`: the site's secret key and what derives from it.
- :mod:`tasks.watermark.coding`: CRC, convolutional code, list Viterbi decoding.
- :mod:`tasks.watermark.embedding`: informed embedding within per-cell caps.
- :mod:`tasks.watermark.detection`: the speed, tempo and phase search, reading, decoding, the decision.
- :mod:`tasks.watermark.lookup`: what a recovered payload names in the catalog.
"""

from tasks.watermark.detection import Detection, detect
from tasks.watermark.embedding import embed, parse_payload
from tasks.watermark.keys import WatermarkKey, load_key, new_key_file
from tasks.watermark.layout import MIN_SECONDS
from tasks.watermark.lookup import clips_with_payload

__all__ = [
    "MIN_SECONDS",
    "Detection",
    "WatermarkKey",
    "clips_with_payload",
    "detect",
    "embed",
    "load_key",
    "new_key_file",
    "parse_payload",
]
