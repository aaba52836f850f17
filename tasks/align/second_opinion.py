"""pocketsphinx's pretrained en-US aligner as a second, independent opinion on English word boundaries.

The GMM aligner learns from the archive itself; pocketsphinx brings a model trained on other speakers' speech
(its wheel ships the acoustic model and the CMU dictionary). Their errors are largely independent, so where
they agree a word boundary is their mean and where they do not pocketsphinx's, which errs less grossly on
little data. On espeak-ng speech with pauses (one bearer, as bench/align.py's collection cases), words within
20 ms at one minute: GMM alone 50-79 %, pocketsphinx alone 77-80 %, combined 77-90 %; at ten minutes 78.5,
77.8 and 85.7 %.

The GMM still gives the phones, in the dialect's own phone set (pocketsphinx knows only General American
ARPAbet): each word's phones are stretched onto the combined word span.
"""

from __future__ import annotations

import numpy as np

from tasks.align.gmm_aligner import RATE_HZ, SHIFT_S, SILENCE, WINDOW_CENTRE_S, Alignment, Interval

# pocketsphinx's default beams, then wider ones: a minute of accented speech (espeak-ng's en-029) finds no
# alignment at the defaults, nor with the word beam left at its default, and aligns in the same second so
BEAMS: tuple[dict[str, float], ...] = ({}, {"beam": 1e-80, "pbeam": 1e-80, "wbeam": 1e-70})
AGREE_S = 0.04  # two boundaries this close are two estimates of one; further apart, one of them is lost
_FILLERS = ("<s>", "</s>", "<sil>", "(NULL)", "[NOISE]")
MIN_WORD_S = 0.02
COMFORT_DB = 50.0

WordTimes = dict[int, tuple[float, float]]  # transcript word index -> (start, end), seconds in the audio


def covers(dialect: str) -> bool:
    """Whether pocketsphinx's en-US model may judge this dialect's speech: English dialects only."""
    return dialect == "en" or dialect.startswith("en-")


def word_times(audio: np.ndarray, words: tuple[str, ...]) -> WordTimes | None:
    """Each word's start and end from pocketsphinx's forced alignment of 16 kHz ``audio``.

    Words the CMU dictionary lacks are left out; they stay between their neighbours in the transcript. None
    when pocketsphinx finds no alignment, even with the wider beams.
    """
    from pocketsphinx import Decoder

    pcm = np.round(np.clip(_comfort_noise(audio), -1, 1) * 32767).astype(np.int16).tobytes()
    for beams in BEAMS:
        decoder = Decoder(samprate=RATE_HZ, bestpath=False, loglevel="FATAL", **beams)
        known = [(i, w) for i, w in enumerate(words) if decoder.lookup_word(w) is not None]
        if not known:
            return None
        decoder.set_align_text(" ".join(w for _, w in known))
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        spoken = [s for s in decoder.seg() or [] if s.word.split("(")[0] not in _FILLERS]
        if len(spoken) == len(known):
            # a frame's time is its window's centre, as the GMM aligner's are: frame starts put words 10 ms early
            return {
                i: (s.start_frame * SHIFT_S + WINDOW_CENTRE_S, (s.end_frame + 1) * SHIFT_S + WINDOW_CENTRE_S)
                for (i, _), s in zip(known, spoken, strict=True)
            }
    return None


def _comfort_noise(audio: np.ndarray) -> np.ndarray:
    """``audio`` over a steady noise floor ``COMFORT_DB`` under its loud frames: pocketsphinx finds no
    alignment for speech between digital silences (a noise-free minute of espeak-ng's en-029 aligned over a
    floor 50 dB under the voice and not over one 60 dB under), and a real floor this low changes nothing."""
    frame = int(SHIFT_S * RATE_HZ)
    n = len(audio) // frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    level = float(np.percentile(rms, 95)) * 10 ** (-COMFORT_DB / 20)
    noise = np.random.default_rng(0).standard_normal(len(audio)) * level
    return (audio + noise).astype(np.float32)


def combine(ali: Alignment, second: WordTimes) -> tuple[Alignment, int]:
    """The GMM's alignment with each word's edges the mean of both aligners' where they agree within
    ``AGREE_S``, pocketsphinx's where they do not; the word's phones stretched onto the new span, silence
    between. Returns it and how many words the two disagreed on."""
    own = [p for p in ali.phones if p.label != SILENCE]
    words: list[Interval] = []
    phones: list[Interval] = []
    disagreed, last_end = 0, 0.0
    for i, w in enumerate(ali.words):
        mine = [p for p in own if w.start_s <= (p.start_s + p.end_s) / 2 < w.end_s]
        start, end = w.start_s, w.end_s
        if i in second:
            other_start, other_end = second[i]
            disagreed += abs(start - other_start) >= AGREE_S or abs(end - other_end) >= AGREE_S
            start = (start + other_start) / 2 if abs(start - other_start) < AGREE_S else other_start
            end = (end + other_end) / 2 if abs(end - other_end) < AGREE_S else other_end
        start = max(start, last_end)
        end = max(end, start + MIN_WORD_S)
        if start > last_end:
            phones.append(Interval(SILENCE, last_end, start))
        scale = (end - start) / max(w.end_s - w.start_s, 1e-6)
        phones += [
            Interval(p.label, start + (p.start_s - w.start_s) * scale, start + (p.end_s - w.start_s) * scale)
            for p in mine
        ]
        words.append(Interval(w.label, start, end))
        last_end = end
    span = ali.frames * SHIFT_S
    if span > last_end:
        phones.append(Interval(SILENCE, last_end, span))
    return Alignment(ali.utt_id, tuple(words), tuple(phones), ali.loglike_per_frame, ali.frames), disagreed
