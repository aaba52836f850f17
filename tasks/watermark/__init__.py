"""heirloom's payload watermark: 32 bits with CRC-16 and a convolutional code, spread over a key-chosen grid
of time-frequency cells, found again after codecs, resampling, noise, crops, speed and tempo changes, and a
phone in a hall. Written in torch, so embedding and detection run on GPU or CPU alike."""

from tasks.watermark.detection import Detection, detect
from tasks.watermark.embedding import embed, parse_payload
from tasks.watermark.keys import WatermarkKey, load_key, new_key_file
from tasks.watermark.layout import MIN_SECONDS

__all__ = ["MIN_SECONDS", "Detection", "WatermarkKey", "detect", "embed", "load_key", "new_key_file", "parse_payload"]
