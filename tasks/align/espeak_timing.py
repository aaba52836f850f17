"""Speech with exact phoneme timings, from espeak-ng's C library (synchronous, phoneme events with IPA names),
through ctypes on the documented speak_lib.h API: the ground truth for alignment tests and benchmarks.
"""

from __future__ import annotations

import ctypes

import numpy as np
import soxr


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_WORD, _PHONEME = 1, 7


class Espeak:
    """espeak-ng's C library, synchronous, phoneme events with IPA names (speak_lib.h's documented API)."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libespeak-ng.so.1")
        self.rate = self.lib.espeak_Initialize(2, 0, None, 0x0001 | 0x0002)  # SYNCHRONOUS; PHONEME_EVENTS|IPA
        self._samples: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._callback = _CALLBACK(self._on_audio)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._samples.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:
            e = events[i]
            if e.type == _PHONEME:
                self._events.append((_PHONEME, e.sample, bytes(e.id.string).split(b"\0")[0].decode("utf-8", "replace")))
            elif e.type == _WORD:
                self._events.append((_WORD, e.sample, ""))
            i += 1
        return 0

    def speak(self, text: str, voice: str) -> tuple[np.ndarray, list[tuple[str, float]], list[float]]:
        """16 kHz audio, the phones spoken (IPA, start in s) and each word's start (s)."""
        self._samples, self._events = [], []
        self.lib.espeak_SetVoiceByName(voice.encode())
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._samples).astype(np.float32) / 32768.0
        phones, words, pending_word = [], [], False
        for kind, sample, name in self._events:
            if kind == _WORD:
                pending_word = True
            elif name:
                if pending_word:
                    words.append(sample / self.rate)
                    pending_word = False
                phones.append((name, sample / self.rate))
        return soxr.resample(audio, self.rate, 16000), phones, words


PLOSIVES = frozenset("pbtdkgɡcɟqʔ")
QUIET = 1e-4  # espeak-ng's closures are digital silence; this leaves room for the resampler's ringing
_BLOCK_S = 0.001
_CLOSURE_SEARCH_S = 0.015
_CLOSURE_MIN_S = 0.01
_CLOSURE_MAX_S = 0.15


def stop_closures(
    audio: np.ndarray, phones: list[tuple[str, float]], words: list[float], rate: int = 16000
) -> tuple[list[tuple[str, float]], list[float]]:
    """The same timings with each plosive starting at its closure rather than its burst.

    espeak-ng reports a plosive's event at its burst; the closure before it (digital silence, 30-50 ms) falls
    in the previous phone's span. Phonetic convention (TIMIT, Buckeye, and so MFA's output) starts a stop at
    its closure, as does any aligner that models closure and burst as one phone. A plosive whose silence
    runs longer than ``_CLOSURE_MAX_S`` follows a pause, where the closure's start cannot be seen; it keeps
    its event time. A word that started with a moved plosive moves with it.
    """
    block = int(_BLOCK_S * rate)
    n = len(audio) // block
    quiet = np.abs(audio[: n * block]).reshape(n, block).max(axis=1) < QUIET
    moved: dict[float, float] = {}
    out = []
    for i, (name, start) in enumerate(phones):
        b = int(start / _BLOCK_S)
        end = next((j for j in range(min(b, n) - 1, b - int(_CLOSURE_SEARCH_S / _BLOCK_S), -1) if quiet[j]), None)
        if name[:1] in PLOSIVES and end is not None and end > 0:
            first = end
            while first > 0 and quiet[first - 1]:
                first -= 1
            onset = first * _BLOCK_S
            previous = phones[i - 1][1] if i else 0.0
            if _CLOSURE_MIN_S <= start - onset <= _CLOSURE_MAX_S and onset > previous:
                moved[start] = onset
                start = onset
        out.append((name, start))
    return out, [moved.get(w, w) for w in words]


Reference = list[tuple[str, float | None]]  # each transcript word and its start (s), None where unknown


def sentences_with_pauses(
    speaker: Espeak,
    voice: str,
    texts: list[str],
    rng: np.random.Generator,
    *,
    floor_db: float | None,
    pause_s: tuple[float, float] = (0.5, 2.0),
) -> tuple[np.ndarray, list[str], Reference]:
    """A recording as a bearer reads: the sentences with pauses drawn from ``pause_s`` and half a second of
    lead-in, over a white noise floor at ``floor_db`` dBFS (None: digital silence, as synthesis or a noise gate
    leaves it); its words, and their starts with stops from their closures. espeak-ng's word events follow its
    own tokens; a sentence where they differ from ours has its words unscored (None)."""
    from tasks.align.g2p import words_of

    pieces, words, ref, t = [np.zeros(8000, np.float32)], [], [], 0.5
    for text in texts:
        audio, phones, starts = speaker.speak(text, voice)
        starts = stop_closures(audio, phones, starts)[1]
        said = words_of(text)
        known = [t + s for s in starts] if len(starts) == len(said) else [None] * len(said)
        ref += list(zip(said, known, strict=True))
        words += said
        pause = np.zeros(int(rng.uniform(*pause_s) * 16000), np.float32)
        pieces += [audio, pause]
        t += (len(audio) + len(pause)) / 16000
    x = np.concatenate(pieces)
    if floor_db is not None:
        x = x + rng.normal(size=len(x)).astype(np.float32) * 10 ** (floor_db / 20)
    return x, words, ref


def word_start_errors(ref: Reference, aligned: list[list]) -> list[float]:
    """Aligned minus true start (s) of every word both sequences share, in order (``aligned``: [word, start,
    end] as segments store them)."""
    import difflib

    matcher = difflib.SequenceMatcher(a=[w for w, _ in ref], b=[w[0] for w in aligned], autojunk=False)
    return [
        aligned[b.b + k][1] - ref[b.a + k][1]  # type: ignore[operator]
        for b in matcher.get_matching_blocks()
        for k in range(b.size)
        if ref[b.a + k][1] is not None
    ]
