"""How a voice model is judged: on held-out segments of its bearer, never seen in training.

- ``similarity_to_bearer``: cosine similarity (resemblyzer d-vectors) between each synthesized held-out text
  and the bearer's real held-out recordings, averaged; ``similarity_to_others``: the same against each other
  bearer's real recordings, the highest of them (the voice it is most easily taken for).
- ``wer``: word error rate of an ASR reading the synthesized texts. English: Whisper tiny.en, free decoding
  (:mod:`voice_models.judges`); where it is not installed, pocketsphinx's en-US model with a word-loop grammar
  over the bearer's own vocabulary, which is far weaker (it scored clips Whisper read at 0.02 at 0.31-0.58);
  other languages: an ASR registered with :func:`register_asr`, else None (the promotion gate then refuses it:
  no intelligibility, no exhibit).
- ``speaker_id_first`` of ``speaker_id_clips``: for how many held-out clips the second judge (a speaker-ID model
  of the bearer and the other bearers, :class:`voice_models.judges.SpeakerID`, fitted on their real recordings)
  ranks the bearer first; None without other bearers to tell apart.
- ``pitch_median_hz`` and ``pitch_range_semitones`` of the synthesized audio, beside ``bearer_pitch_median_hz``
  and ``bearer_pitch_range_semitones`` of the bearer's held-out recordings.
- ``dnsmos_ovrl``: DNSMOS P.835 overall of the synthesized audio, averaged.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from voice_models.backend import Utterance, VoiceBackend
from voice_models.phones import Words

Synthesize = Callable[[Words], tuple[np.ndarray, int]]
Recognize = Callable[[np.ndarray, Sequence[str]], str]  # 16 kHz audio, the allowed vocabulary -> words
RATE_HZ = 16000
HELD_OUT_FRACTION = 0.1
MAX_HELD_OUT = 20
_ENCODER_LOCK = threading.Lock()
_ASR: dict[str, Recognize] = {}


def split_held_out(utterance_ids: Sequence[str]) -> tuple[set[str], set[str]]:
    """(train, held-out) ids: a stable tenth (1 to 20) chosen by hash, so a retraining holds out the same ones."""
    ranked = sorted(utterance_ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    n = min(MAX_HELD_OUT, max(1, round(len(ranked) * HELD_OUT_FRACTION))) if len(ranked) > 1 else 0
    return set(ranked[n:]), set(ranked[:n])


def register_asr(language_prefix: str, recognize: Recognize) -> None:
    """Use ``recognize`` for intelligibility of languages whose code starts with ``language_prefix``."""
    _ASR[language_prefix] = recognize


@lru_cache(maxsize=1)
def _encoder():
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def _to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    return x if rate == RATE_HZ else soxr.resample(x, rate, RATE_HZ).astype(np.float32)


def embedding(audio: np.ndarray, rate: int) -> np.ndarray | None:
    """A unit-norm resemblyzer d-vector, or None when too little voiced audio remains after its VAD trim."""
    from resemblyzer import preprocess_wav

    wav = preprocess_wav(_to_16k(audio, rate), source_sr=RATE_HZ)
    if len(wav) < RATE_HZ // 4:
        return None
    with _ENCODER_LOCK:
        e = _encoder().embed_utterance(wav)
    return e / max(np.linalg.norm(e), 1e-9)


def voice_of(utterances: Sequence[Utterance]) -> np.ndarray | None:
    """The mean d-vector of a speaker's recordings (unit norm)."""
    vectors = [v for u in utterances if (v := embedding(u.audio, u.sample_rate)) is not None]
    if not vectors:
        return None
    m = np.mean(vectors, axis=0)
    return m / max(np.linalg.norm(m), 1e-9)


def _pocketsphinx(audio16k: np.ndarray, vocabulary: Sequence[str]) -> str:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=RATE_HZ, loglevel="FATAL")
    known = sorted({w for w in vocabulary if decoder.lookup_word(w) is not None})
    if not known:
        return ""
    decoder.add_jsgf_string("words", "#JSGF V1.0;\ngrammar words;\npublic <s> = ( " + " | ".join(known) + " )* ;\n")
    decoder.activate_search("words")
    decoder.start_utt()
    decoder.process_raw((np.clip(audio16k, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


def _english() -> tuple[Recognize, str]:
    from voice_models.judges import whisper_available, whisper_en

    return (whisper_en, "whisper-tiny.en") if whisper_available() else (_pocketsphinx, "pocketsphinx-en-us-word-loop")


_EN, _EN_NAME = _english()
register_asr("en", _EN)


def recognizer_for(language: str | None) -> Recognize | None:
    """The ASR registered for ``language`` (the longest matching prefix), or None."""
    for prefix, fn in sorted(_ASR.items(), key=lambda kv: -len(kv[0])):
        if language and language.startswith(prefix):
            return fn
    return None


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    import kaldialign

    return int(kaldialign.edit_distance(list(reference), list(hypothesis))["total"])


@dataclass(frozen=True)
class Panel:
    """What every voice evaluated for one bearer is held against, computed once: the bearer's mean voice, the
    other bearers' voices, the speaker-ID judge fitted on their real recordings, the bearer's own pitch."""

    speaker: str | None
    bearer: np.ndarray | None
    other_voices: tuple[np.ndarray, ...]
    judge: Any
    bearer_pitch: dict[str, float | None]


def panel(held_out: Sequence[Utterance], others: Sequence[Utterance], reference: Sequence[Utterance] = ()) -> Panel:
    """The :class:`Panel` for ``held_out``'s bearer; ``reference``: more of their real recordings (their training
    segments) for the speaker-ID judge, which otherwise learns the bearer from the held-out ones."""
    from voice_models.judges import SpeakerID, pitch

    by_speaker: dict[str, list[Utterance]] = {}
    for u in others:
        by_speaker.setdefault(u.speaker, []).append(u)
    speaker = held_out[0].speaker if held_out else None
    judge = None
    if by_speaker and speaker is not None:
        voices = {s: [u.audio for u in us] for s, us in by_speaker.items()}
        judge = SpeakerID({speaker: [u.audio for u in reference or held_out], **voices}, held_out[0].sample_rate)
    return Panel(
        speaker=speaker,
        bearer=voice_of(held_out),
        other_voices=tuple(v for us in by_speaker.values() if (v := voice_of(us)) is not None),
        judge=judge,
        bearer_pitch=pitch([u.audio for u in held_out], held_out[0].sample_rate if held_out else RATE_HZ),
    )


def evaluate(
    synthesize: Synthesize,
    held_out: Sequence[Utterance],
    others: Sequence[Utterance],
    *,
    language: str | None,
    reference: Sequence[Utterance] = (),
    keep_audio: dict[str, np.ndarray] | None = None,
    against: Panel | None = None,
) -> dict[str, Any]:
    """The metrics of one model voice on the held-out texts (see the module's docstring).

    ``against``: the bearer's :class:`Panel` when several voices are judged for them (else made here, with
    ``reference``); ``keep_audio``: filled with each held-out segment's synthesized audio, at 16 kHz, for a
    listening set.
    """
    from tasks.align import comparable, words_of
    from tasks.prepare import dnsmos
    from voice_models.judges import pitch

    p = against or panel(held_out, others, reference)
    asr = recognizer_for(language)
    vocabulary = sorted({w for u in held_out for w in words_of(u.text)})
    sims, sims_other, mos, errors, ref_words, seconds, synth_s = [], [], [], 0, 0, 0.0, 0.0
    firsts, ranked, clips = 0, 0, []
    for u in held_out:
        t0 = time.perf_counter()
        audio, rate = synthesize(u.words)
        synth_s += time.perf_counter() - t0
        seconds += len(audio) / rate
        x16 = _to_16k(audio, rate)
        clips.append(x16)
        if keep_audio is not None:
            keep_audio[u.segment_id] = x16
        v = embedding(audio, rate)
        if v is not None and p.bearer is not None:
            sims.append(float(v @ p.bearer))
        if v is not None and p.other_voices:
            sims_other.append(max(float(v @ o) for o in p.other_voices))
        if p.judge is not None and (order := p.judge.rank(x16, RATE_HZ)):
            ranked += 1
            firsts += order[0][0] == p.speaker
        mos.append(dnsmos(x16)["ovrl"])
        if asr is not None:
            # both sides spelt alike, as the clip check does: Whisper writes "harbor" and "40"
            ref = comparable(words_of(u.text))
            errors += word_errors(ref, comparable(asr(x16, vocabulary).split()))
            ref_words += len(ref)
    said = pitch(clips, RATE_HZ)
    return {
        "held_out": len(held_out),
        "similarity_to_bearer": round(float(np.mean(sims)), 4) if sims else None,
        "similarity_to_others": round(float(np.mean(sims_other)), 4) if sims_other else None,
        "speaker_id_first": firsts if p.judge is not None else None,
        "speaker_id_clips": ranked if p.judge is not None else None,
        "wer": round(errors / ref_words, 4) if asr is not None and ref_words else None,
        "asr": _EN_NAME if asr is _EN else (None if asr is None else "registered"),
        "pitch_median_hz": said["median_hz"],
        "pitch_range_semitones": said["range_semitones"],
        "bearer_pitch_median_hz": p.bearer_pitch["median_hz"],
        "bearer_pitch_range_semitones": p.bearer_pitch["range_semitones"],
        "dnsmos_ovrl": round(float(np.nanmean(mos)), 3) if mos else None,
        "synthesized_s": round(seconds, 2),
        "synthesis_rtf": round(seconds / synth_s, 1) if synth_s else None,
    }


def evaluate_model(
    backend: VoiceBackend,
    model_dir: Path,
    speaker: str,
    held_out: Sequence[Utterance],
    others: Sequence[Utterance],
    *,
    language: str | None,
    keep_audio: dict[str, np.ndarray] | None = None,
    against: Panel | None = None,
) -> dict[str, Any]:
    """The documented metrics of ``backend``'s model in ``model_dir`` speaking as ``speaker``."""
    return evaluate(
        lambda words: backend.synthesize(model_dir, words, speaker),
        held_out,
        others,
        language=language,
        keep_audio=keep_audio,
        against=against,
    )
