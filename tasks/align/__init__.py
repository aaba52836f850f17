"""Align: transcripts to working copies, dialect-aware, as utterance-sized segments on the original's timeline.

Takes recordings with a transcript and a working copy that passed its gate, and the archive's per-dialect
lexicons; gives ``segments`` rows (text, word and phone intervals, score, flags) and
``alignments/<recording_id>/<dialect>-v<N>.TextGrid``, plus new lexicon versions for words it had to
pronounce.

- :mod:`tasks.align.collection`: the stage's entry points: which recordings to align, anchoring and cutting
  at pauses, training and aligning, segments, TextGrids, commit and export.
- :mod:`tasks.align.lexicon`: versioned per-dialect lexicons in MFA's format and per-bearer exceptions.
- :mod:`tasks.align.g2p`: pronunciations from espeak-ng's dialect voices, in the shared IPA phone set.
- :mod:`tasks.align.gmm_aligner`: the Kaldi-style GMM-HMM aligner (kaldi-hmm-gmm), trained on the archive's
  own speech; :mod:`tasks.align.context_tree` ties its triphone states.
- :mod:`tasks.align.second_opinion`: pocketsphinx's pretrained en-US aligner, anchors and a second opinion on
  English word boundaries.
- :mod:`tasks.align.mfa_backend`: real Montreal Forced Aligner where a worker image has ``mfa``.
- :mod:`tasks.align.espeak_timing`: speech with exact phone timings from espeak-ng, the ground truth of the
  alignment tests and benchmark.
"""

from tasks.align.collection import BACKENDS, align_collection, commit, export, jobs, pool, segments, textgrid
from tasks.align.g2p import (
    GARBAGE,
    MODIFIERS,
    PHONES,
    SYMBOLS,
    G2PError,
    comparable,
    is_syllabic,
    stress_marks,
    words_of,
)
from tasks.align.lexicon import (
    Lexicon,
    LexiconError,
    bearer_exceptions,
    build,
    check_dialect,
    latest,
    parse_dict,
    pronounce,
)

__all__ = [
    "BACKENDS",
    "GARBAGE",
    "G2PError",
    "MODIFIERS",
    "PHONES",
    "SYMBOLS",
    "Lexicon",
    "LexiconError",
    "align_collection",
    "bearer_exceptions",
    "build",
    "check_dialect",
    "commit",
    "comparable",
    "export",
    "is_syllabic",
    "stress_marks",
    "jobs",
    "latest",
    "parse_dict",
    "pool",
    "pronounce",
    "segments",
    "textgrid",
    "words_of",
]
