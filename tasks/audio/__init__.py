"""Audio files as heirloom reads them, shared by every stage.

Takes a local path to any format heirloom accepts (WAV/BWF, FLAC, MP3, Ogg Vorbis/Opus, M4A/AAC); gives its
parameters after a full validating decode (:mod:`tasks.audio.probe`), or its samples as float32 blocks with
memory flat in file length (:mod:`tasks.audio.reading`). libsndfile reads what it can; ffmpeg decodes the rest.
"""

from tasks.audio.probe import AudioInfo, probe_audio
from tasks.audio.reading import audio_rate_channels, read_all, read_blocks

__all__ = ["AudioInfo", "audio_rate_channels", "probe_audio", "read_all", "read_blocks"]
