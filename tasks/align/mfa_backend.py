"""The second aligner backend: real Montreal Forced Aligner, where a worker image has the ``mfa`` command
(conda-built; it cannot be installed from PyPI alone). Same lexicons, same utterances, its TextGrids read back
into heirloom's intervals so the two backends can be compared on one collection.

MFA 3's command line: ``mfa train CORPUS DICTIONARY MODEL.zip --output_directory ALIGNED`` trains on the
corpus (flat start, then triphones, LDA+MLLT and speaker adaptation) and writes one TextGrid per utterance.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from tasks.align.gmm_aligner import RATE_HZ, AlignmentError, Interval
from tasks.align.lexicon import Pronunciations, format_dict

Utterance = tuple[str, np.ndarray, list[str]]  # id, 16 kHz audio, words


class MfaMissing(AlignmentError):
    """No ``mfa`` command on this machine."""


def available() -> bool:
    return shutil.which("mfa") is not None


def require() -> None:
    """Raise :class:`MfaMissing`, with the fix, where there is no ``mfa`` command."""
    if not available():
        raise MfaMissing(
            "the mfa command is not installed here (a conda-built worker image has it); use the built-in backend,"
            " --backend gmm"
        )


def align(utterances: list[Utterance], lexicon: Pronunciations) -> dict[str, tuple[tuple[Interval, ...], ...]]:
    """``{utt_id: (words, phones)}`` from MFA trained on these utterances with this dialect's lexicon."""
    require()
    from praatio import textgrid as tgio

    with tempfile.TemporaryDirectory(prefix="heirloom-mfa-") as tmp:
        root = Path(tmp)
        corpus, out = root / "corpus", root / "aligned"
        corpus.mkdir()
        for utt_id, audio, words in utterances:
            sf.write(str(corpus / f"{utt_id}.wav"), audio, RATE_HZ, subtype="PCM_16")
            (corpus / f"{utt_id}.lab").write_text(" ".join(words) + "\n")
        (root / "lexicon.dict").write_text(format_dict(lexicon))
        subprocess.run(
            [
                "mfa",
                "train",
                "--clean",
                "--quiet",
                str(corpus),
                str(root / "lexicon.dict"),
                str(root / "model.zip"),
                "--output_directory",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        result = {}
        for utt_id, _, _ in utterances:
            path = next(out.rglob(f"{utt_id}.TextGrid"), None)
            if path is None:
                continue
            tg = tgio.openTextgrid(str(path), includeEmptyIntervals=False)
            tiers = [
                tuple(Interval(e.label, e.start, e.end) for e in tg.getTier(name).entries)
                for name in ("words", "phones")
            ]
            result[utt_id] = (tiers[0], tiers[1])
        return result
