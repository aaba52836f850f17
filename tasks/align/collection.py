"""Aligning a collection: transcripts of whole sessions to their working copies, as segments under 30 s.

For each recording with a transcript and a working copy that did not fail its gate: the words are pronounced
with the bearer's dialect lexicon (bearer exceptions, lexicon, G2P, garbage phone for what none can say).
Recordings with more than one stretch of speech get an anchoring pass over the whole speech span:
pocketsphinx's en-US aligner for English dialects, else (or when it fails) a first GMM trained on provisional
utterances (prepare's speech regions with the words spread over them by length) with a wide beam. The
recording is then cut at every pause (prepare's VAD) where the anchors put a word boundary inside the pause,
never by duration alone (a long pause inside one utterance is otherwise swallowed by a phone), so a chunk is
an utterance; a stretch with no such pause for over 30 s stays whole and is flagged.

The final GMM is trained on those chunks and on the utterances of the archive's other aligned recordings (the
pool: a flat start cannot learn from one minute of speech), each compiled with its own dialect's lexicon.
English chunks then get pocketsphinx's pretrained second opinion on their word boundaries
(:mod:`tasks.align.second_opinion`); other dialects have the GMM alone, and a recording whose dialect had
under ``MIN_GMM_SPEECH_S`` of training speech is reported as doubtful. So is one whose segments are mostly
flagged: its TextGrid says so in a ``notes`` tier.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from catalog.manifests import Segment
from catalog.storage import Storage, staged
from catalog.tables import Catalog, latest_derivatives
from tasks.align import mfa_backend, second_opinion
from tasks.align.g2p import words_of
from tasks.align.gmm_aligner import (
    RATE_HZ,
    SHIFT_S,
    SILENCE,
    Alignment,
    AlignmentError,
    GmmAligner,
    Interval,
)
from tasks.align.lexicon import Lexicon, Pronounced, bearer_exceptions, build, pronounce

MAX_CHUNK_S = 30.0
MIN_CHUNK_S = 2.0
_ANCHOR_TOLERANCE_S = 0.15
_CHUNK_MARGIN_S = 0.1
_PAUSE_KEPT_S = 0.15  # of a pause at a cut, the most each chunk keeps: enough silence for the edge to be sure
ANCHOR_BEAM = 40.0
DISAGREE_SHARE = 1 / 3  # a chunk whose two aligners disagree on more of its words than this is flagged
MOSTLY = 0.5  # a recording with more of its utterances unaligned or flagged than this is doubtful
# Under three minutes of a dialect's speech the GMM alone put 50-80 % of word starts within 20 ms on
# bench/align.py's collection cases, against 85 % and more with a second opinion
MIN_GMM_SPEECH_S = 180.0
DOUBTFUL = "doubtful: "  # the flag on every segment of a doubtful recording, with the reasons
FAILED = "failed: "  # ... of a recording whose alignment failed
LOW_SCORE_MADS = 4.0  # a chunk this many median absolute deviations under the collection's median is flagged
# training time grows with the pool (ten minutes of speech train and align in under a minute on two cores)
POOL_MAX_S = 3600.0


@dataclass(frozen=True)
class Job:
    recording_id: str
    bearer_id: str
    dialect: str
    text: str
    words: tuple[str, ...]
    working_uri: str
    speech: tuple[tuple[float, float], ...]  # prepare's speech regions, seconds on the original's timeline
    duration_s: float


@dataclass(frozen=True)
class Chunk:
    job: Job
    start_s: float
    end_s: float
    words: tuple[str, ...]


def jobs(
    catalog: Catalog,
    storage: Storage,
    *,
    collection: str | None = None,
    recording_id: str | None = None,
    recording_ids: set[str] | None = None,
) -> tuple[list[Job], list[dict[str, str]]]:
    """What can be aligned, and what cannot with the reason (no transcript, no working copy, failed gate,
    no dialect)."""
    recordings = catalog.read("recordings").to_pylist()
    if collection is not None:
        recordings = [r for r in recordings if r["collection"] == collection]
    if recording_id is not None:
        recordings = [r for r in recordings if r["recording_id"] == recording_id]
    if recording_ids is not None:
        recordings = [r for r in recordings if r["recording_id"] in recording_ids]
    bearers = {b["bearer_id"]: b for b in catalog.read("bearers").to_pylist()}
    derivatives = latest_derivatives(catalog)
    out, skipped = [], []
    for r in recordings:
        rid = r["recording_id"]
        d = derivatives.get(rid)
        dialect = r.get("dialect") or (bearers.get(r["bearer_id"]) or {}).get("dialect")
        reason = _skip_reason(r, d, dialect)
        if reason:
            skipped.append({"recording_id": rid, "reason": reason})
            continue
        seg_doc = json.loads(storage.read_bytes(storage.key_of(json.loads(d["metrics"])["segments_uri"])))
        # working copies made before prepare kept the VAD's regions have only the packed segments' pauses
        regions = seg_doc.get("speech_regions") or [
            (s["original_start_s"], s["original_end_s"]) for s in seg_doc["segments"]
        ]
        speech = tuple((float(s), float(e)) for s, e in regions)
        out.append(
            Job(
                rid,
                r["bearer_id"],
                dialect,
                r["transcript"],
                tuple(words_of(r["transcript"])),
                d["uri"],
                speech,
                d["duration_s"],
            )
        )
    return out, skipped


def pool(catalog: Catalog, storage: Storage, exclude: set[str], *, max_s: float = POOL_MAX_S) -> list[Chunk]:
    """Training utterances from the archive's other aligned recordings: their unflagged segments, on their
    current working copies (at most ``max_s`` of speech, spread evenly over the recordings). A flat start
    learns each collection's phones better from the whole archive's speech than from its own minute."""
    rows = [
        Segment.from_dict(r)
        for r in catalog.read("segments").to_pylist()
        if r["recording_id"] not in exclude and not r["flags"]
    ]
    if not rows:
        return []
    # each job reads its recording's .segments.json: only the recordings that have something to give
    candidates, _ = jobs(catalog, storage, recording_ids={r.recording_id for r in rows})
    usable = {j.recording_id: j for j in candidates}
    rows = [r for r in rows if r.recording_id in usable]
    rows.sort(key=lambda r: (r.recording_id, r.start_s))
    step = max(1, math.ceil(sum(r.end_s - r.start_s for r in rows) / max_s)) if rows else 1
    return [
        Chunk(
            usable[r.recording_id],
            max(0.0, r.start_s - _CHUNK_MARGIN_S),
            r.end_s + _CHUNK_MARGIN_S,
            tuple(words_of(r.text)),
        )
        for r in rows[::step]
    ]


def _skip_reason(recording: dict[str, Any], derivative: dict[str, Any] | None, dialect: str | None) -> str:
    if not words_of(recording.get("transcript") or ""):
        return "no transcript"
    if derivative is None:
        return "no working copy: run `heirloom prepare` first"
    if derivative["gate"] == "fail":
        return f"working copy failed its gate ({'; '.join(derivative['gate_reasons'] or [])})"
    if not dialect:
        return "no dialect for the recording or its bearer: set it in the manifest or with `heirloom bearers add`"
    return ""


def audio16(storage: Storage, uri: str) -> np.ndarray:
    with staged(storage, storage.key_of(uri)) as path:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return soxr.resample(x.mean(axis=1), sr, RATE_HZ).astype(np.float32)


def _provisional(job: Job) -> list[Chunk]:
    """Training utterances before any model exists: the speech regions, merged until each lasts
    ``MIN_CHUNK_S``, with the words spread over them in proportion to duration (letters per second held
    constant). A word or two lands in the wrong piece; a flat start still learns more from short pieces than
    from one long one (seven German sentences as one 27 s utterance trained to no alignment at all)."""
    if not job.speech:
        return []
    spans: list[tuple[float, float]] = []
    for s, e in job.speech:
        if spans and spans[-1][1] - spans[-1][0] < MIN_CHUNK_S:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < MIN_CHUNK_S:
        spans[-2:] = [(spans[-2][0], spans[-1][1])]
    letters = np.cumsum([len(w) for w in job.words])
    durations = np.array([e - s for s, e in spans])
    cuts = np.searchsorted(letters, np.cumsum(durations) / durations.sum() * letters[-1], side="left")
    chunks, first = [], 0
    for (s, e), last in zip(spans, cuts, strict=True):
        words = job.words[first : int(last) + 1]
        if words:
            chunks.append(Chunk(job, max(0.0, s - _CHUNK_MARGIN_S), e + _CHUNK_MARGIN_S, words))
        first = int(last) + 1
    return chunks


def _anchor_chunks(job: Job, anchors: second_opinion.WordTimes, offset_s: float) -> list[Chunk]:
    """Cut a long recording at every pause that the anchoring pass puts between two consecutive words (the
    pause in the speech segments, the words on either side of it), merging pieces shorter than
    ``MIN_CHUNK_S``: short utterances train and align better than long ones.

    A cut lies inside the pause (its middle, at most ``_PAUSE_KEPT_S`` from either side), not at the anchors'
    word edges: an anchor that ends a word early would otherwise cut the word off, and the final alignment
    could only squeeze it into what was left (on bench/align.py's long recording, "row" by 390 ms).
    """
    gaps = [(e1, s2) for (_, e1), (s2, _) in zip(job.speech, job.speech[1:], strict=False)]
    times = {i: (s + offset_s, e + offset_s) for i, (s, e) in anchors.items()}
    cuts: list[tuple[int, float, float]] = []  # (word after which the pause lies, end of this chunk, next start)
    for i in range(len(job.words) - 1):
        if i in times and i + 1 in times:
            end, nxt = times[i][1], times[i + 1][0]
            gap = next(
                ((g0, g1) for g0, g1 in gaps if end <= g0 + _ANCHOR_TOLERANCE_S and nxt >= g1 - _ANCHOR_TOLERANCE_S),
                None,
            )
            if gap is not None:
                middle = (gap[0] + gap[1]) / 2
                cuts.append((i, min(middle, gap[0] + _PAUSE_KEPT_S), max(middle, gap[1] - _PAUSE_KEPT_S)))
    last = len(job.words) - 1
    chunks, first, start = [], 0, max(0.0, job.speech[0][0] - _CHUNK_MARGIN_S)
    for i, end, next_start in [*cuts, (last, job.speech[-1][1] + _CHUNK_MARGIN_S, 0.0)]:
        if end - start < MIN_CHUNK_S and i != last:
            continue
        chunks.append(Chunk(job, start, end, job.words[first : i + 1]))
        first, start = i + 1, next_start
    return chunks


BACKENDS = ("gmm", "mfa")


@dataclass(frozen=True)
class ChunkResult:
    chunk: Chunk
    alignment: Alignment | None
    error: str = ""
    aligner: str = "gmm"
    disagreed: int = 0  # words on which the second opinion put a boundary AGREE_S or more away
    second_opinion_failed: bool = False


@dataclass(frozen=True)
class Training:
    """What one dialect's model learnt from: the rule that says whether to trust it reads this."""

    dialect: str
    speech_s: float
    utterances: int
    pooled_recordings: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "speech_s": round(self.speech_s, 1),
            "utterances": self.utterances,
            "pooled_recordings": self.pooled_recordings,
        }


def align_collection(
    storage: Storage,
    job_list: list[Job],
    *,
    pool: list[Chunk] | None = None,
    iterations: int = 25,
    backend: str = "gmm",
) -> tuple[list[ChunkResult], dict[str, Lexicon], dict[str, Pronounced], dict[str, Training]]:
    """Train on the collection (and ``pool``: utterances of other recordings, trained on, not aligned) and
    align every job; returns a result per chunk, the lexicons, the pronunciations and what each dialect's
    model was trained on.

    ``backend``: ``gmm``, the built-in GMM-HMM (with pocketsphinx's second opinion for English), or ``mfa``,
    Montreal Forced Aligner trained on the same chunks with the same lexicons (where the ``mfa`` command is
    installed). Chunking is the same for both.
    """
    if backend not in BACKENDS:
        raise AlignmentError(f"no aligner backend {backend!r}; the backends are {', '.join(BACKENDS)}")
    if backend == "mfa":
        mfa_backend.require()  # before any work is done
    pool = [c for c in pool or [] if c.job.recording_id not in {j.recording_id for j in job_list}]
    by_dialect: dict[str, list[str]] = {}
    for j in job_list:
        by_dialect.setdefault(j.dialect, []).extend(j.words)
    for c in pool:
        by_dialect.setdefault(c.job.dialect, []).extend(c.words)
    lexicons = {d: build(storage, d, ws)[0] for d, ws in by_dialect.items()}
    said = {
        j.recording_id: pronounce(list(j.words), lexicons[j.dialect], bearer_exceptions(storage, j.bearer_id))
        for j in job_list
    }
    prons: dict[str, dict[str, list[tuple[str, ...]]]] = {d: dict(lex.entries) for d, lex in lexicons.items()}
    for j in job_list:
        prons[j.dialect].update(said[j.recording_id].pronunciations)
    audio = {j.recording_id: audio16(storage, j.working_uri) for j in [*job_list, *{c.job for c in pool}]}

    def cut(chunk: Chunk) -> np.ndarray:
        x = audio[chunk.job.recording_id]
        return x[int(chunk.start_s * RATE_HZ) : int(chunk.end_s * RATE_HZ)]

    @cache  # trained only when some recording needs the GMM for its anchors
    def first_model() -> GmmAligner:
        model = GmmAligner(prons)
        provisional = [c for j in job_list for c in _provisional(j)] + pool
        model.train(
            [(f"p{i}", cut(c), list(c.words), c.job.dialect) for i, c in enumerate(provisional)], iterations=iterations
        )
        return model

    final_chunks: list[Chunk] = []
    for j in job_list:
        span = (j.speech[0][0], j.speech[-1][1]) if j.speech else (0.0, len(audio[j.recording_id]) / RATE_HZ)
        if len(j.speech) <= 1:  # one stretch of speech: nothing to cut at
            final_chunks.append(Chunk(j, *span, j.words))
            continue
        whole = cut(Chunk(j, *span, j.words))
        anchors = second_opinion.word_times(whole, j.words) if second_opinion.covers(j.dialect) else None
        if anchors is None:
            try:
                first_pass = first_model().align(j.recording_id, whole, list(j.words), j.dialect, beam=ANCHOR_BEAM)
                anchors = {k: (w.start_s, w.end_s) for k, w in enumerate(first_pass.words)}
            except AlignmentError:
                anchors = None
        final_chunks += _anchor_chunks(j, anchors, span[0]) if anchors else _provisional(j)
    trained = [*final_chunks, *pool]
    training = {
        d: Training(
            d,
            sum(c.end_s - c.start_s for c in trained if c.job.dialect == d),
            sum(c.job.dialect == d for c in trained),
            len({c.job.recording_id for c in pool if c.job.dialect == d}),
        )
        for d in lexicons
    }
    if backend == "mfa":
        return _align_with_mfa(final_chunks, prons, cut), lexicons, said, training
    final = GmmAligner(prons)
    try:
        final.train(
            [(f"c{i}", cut(c), list(c.words), c.job.dialect) for i, c in enumerate(trained)], iterations=iterations
        )
    except AlignmentError as e:
        return [ChunkResult(c, None, str(e)) for c in final_chunks], lexicons, said, training
    return [_align_chunk(final, f"c{i}", c, cut(c)) for i, c in enumerate(final_chunks)], lexicons, said, training


def _align_chunk(model: GmmAligner, utt: str, chunk: Chunk, audio: np.ndarray) -> ChunkResult:
    try:
        ali = model.align(utt, audio, list(chunk.words), chunk.job.dialect)
    except AlignmentError as e:
        return ChunkResult(chunk, None, str(e))
    if not second_opinion.covers(chunk.job.dialect):
        return ChunkResult(chunk, ali)
    times = second_opinion.word_times(audio, chunk.words)
    if times is None:
        return ChunkResult(chunk, ali, aligner="gmm", second_opinion_failed=True)
    combined, disagreed = second_opinion.combine(ali, times)
    return ChunkResult(chunk, combined, aligner="gmm+pocketsphinx", disagreed=disagreed)


def _align_with_mfa(chunks: list[Chunk], prons: dict[str, dict[str, list[tuple[str, ...]]]], cut) -> list[ChunkResult]:
    """The chunks aligned by MFA, one training run per dialect with that dialect's lexicon. MFA's TextGrids
    carry no likelihood, so these alignments have no score (and are never flagged for a low one)."""
    found: dict[str, tuple[tuple[Interval, ...], ...]] = {}
    for dialect in dict.fromkeys(c.job.dialect for c in chunks):
        mine = [(f"c{i}", cut(c), list(c.words)) for i, c in enumerate(chunks) if c.job.dialect == dialect]
        found |= mfa_backend.align(mine, prons[dialect])
    results: list[ChunkResult] = []
    for i, c in enumerate(chunks):
        if f"c{i}" not in found:
            error = f"c{i}: MFA wrote no alignment: check that transcript and audio belong together"
            results.append(ChunkResult(c, None, error, aligner="mfa"))
            continue
        words, phones = found[f"c{i}"]
        frames = round((c.end_s - c.start_s) / SHIFT_S)
        results.append(ChunkResult(c, Alignment(f"c{i}", words, phones, float("nan"), frames), aligner="mfa"))
    return results


def segments(
    results: list[ChunkResult],
    lexicons: dict[str, Lexicon],
    said: dict[str, Pronounced],
    training: dict[str, Training] | None = None,
) -> list[Segment]:
    """``segments`` rows on the original's timeline, flagged for review where the alignment is doubtful, and
    every row of a recording whose alignment as a whole is doubtful flagged ``doubtful: <reasons>``."""
    scores = np.array([r.alignment.loglike_per_frame for r in results if r.alignment is not None])
    scores = scores[np.isfinite(scores)]  # MFA's alignments have no score
    median = float(np.median(scores)) if len(scores) else 0.0
    mad = float(np.median(np.abs(scores - median))) if len(scores) else 0.0
    rows = []
    for r in results:
        c, a = r.chunk, r.alignment
        if a is None:
            continue
        rid = c.job.recording_id
        oov = [w for w in c.words if said[rid].source.get(w) == "oov"]
        flags = [f"oov:{w}" for w in oov]
        if c.end_s - c.start_s > MAX_CHUNK_S:  # no anchored pause for that long: too long to train on
            flags.append(f"longer_than_{MAX_CHUNK_S:g}s")
        if a.duration_outliers:
            flags.append(f"duration_outliers:{a.duration_outliers}")
        if np.isfinite(a.loglike_per_frame) and a.loglike_per_frame < median - LOW_SCORE_MADS * max(mad, 1e-6):
            flags.append(f"low_score:{a.loglike_per_frame:.1f}")
        learnt = (training or {}).get(c.job.dialect)
        # a GMM that learnt from under MIN_GMM_SPEECH_S disagrees with pocketsphinx because it is weak (the
        # demo's bearers, 7-20 s of speech each: on every chunk): its word edges give way, its doubts are not heard
        if r.disagreed > DISAGREE_SHARE * len(c.words) and (learnt is None or learnt.speech_s >= MIN_GMM_SPEECH_S):
            flags.append(f"aligners_disagree:{r.disagreed}/{len(c.words)}")
        if r.second_opinion_failed:
            flags.append("second_opinion_failed")
        body = {
            "words": [_shifted(w, c.start_s) for w in a.words],
            "phones": [_shifted(p, c.start_s) for p in a.phones if p.label != SILENCE],
            "aligner": r.aligner,
        }
        start = a.words[0].start_s + c.start_s if a.words else c.start_s
        end = a.words[-1].end_s + c.start_s if a.words else c.end_s
        digest = hashlib.sha256(f"{rid}|{start:.3f}|{end:.3f}|{lexicons[c.job.dialect].name}".encode()).hexdigest()
        rows.append(
            Segment(
                segment_id=f"seg-{digest[:24]}",
                recording_id=rid,
                start_s=round(start, 3),
                end_s=round(end, 3),
                text=" ".join(c.words),
                phones=json.dumps(body, ensure_ascii=False),
                dialect=c.job.dialect,
                lexicon_version=lexicons[c.job.dialect].name,
                score=a.loglike_per_frame if np.isfinite(a.loglike_per_frame) else None,
                flags=tuple(flags),
            )
        )
    out = []
    for rid in dict.fromkeys(r.chunk.job.recording_id for r in results):
        mine = [row for row in rows if row.recording_id == rid]
        reasons, fatal = doubts([r for r in results if r.chunk.job.recording_id == rid], mine, training or {})
        note = (f"{FAILED if fatal else DOUBTFUL}{'; '.join(reasons)}",) if reasons else ()
        out += [replace(row, flags=(*row.flags, *note)) for row in mine]
    return out


def doubts(results: list[ChunkResult], rows: list[Segment], training: dict[str, Training]) -> tuple[list[str], bool]:
    """Why a recording's alignment as a whole cannot be trusted, if it cannot, and whether it failed outright:
    most utterances unaligned or flagged, pocketsphinx finding no alignment for most of an English recording
    (it aligns accented speech: a transcript that is not this recording's is the likely cause; failed), or a
    dialect with no pretrained second opinion whose model learnt from too little speech."""
    reasons, fatal = [], False
    failed = sum(r.alignment is None for r in results)
    if failed and failed >= MOSTLY * len(results):
        reasons.append(f"{failed} of {len(results)} utterances could not be aligned")
    lost = sum(r.second_opinion_failed for r in results)
    if lost and lost >= MOSTLY * len(results):
        reasons.append(
            f"pocketsphinx found no alignment for {lost} of {len(results)} utterances: check that the transcript"
            " belongs to this recording"
        )
        fatal = True
    flagged = [row for row in rows if row.flags]
    if rows and len(flagged) > MOSTLY * len(rows):
        kinds = sorted({f.split(":")[0] for row in flagged for f in row.flags})
        reasons.append(f"{len(flagged)} of {len(rows)} segments flagged ({', '.join(kinds)})")
    dialect = results[0].chunk.job.dialect if results else ""
    t = training.get(dialect)
    if t is not None and not second_opinion.covers(dialect) and t.speech_s < MIN_GMM_SPEECH_S:
        reasons.append(
            f"the {dialect} model learnt from {t.speech_s / 60:.1f} min of speech (under"
            f" {MIN_GMM_SPEECH_S / 60:g}) and no pretrained model covers {dialect}: align more of the dialect"
        )
    return reasons, fatal


def _shifted(iv: Interval, offset_s: float) -> list[Any]:
    return [iv.label, round(iv.start_s + offset_s, 3), round(iv.end_s + offset_s, 3)]


def textgrid(rows: list[Segment], duration_s: float) -> str:
    """A Praat TextGrid (long text format, via praatio) with word and phone tiers for one recording, and a
    ``notes`` tier over the whole recording when its alignment is doubtful, so a researcher opening it is told."""
    from praatio import textgrid as tgio
    from praatio.utilities.constants import Interval as TgInterval

    words, phones = [], []
    for row in sorted(rows, key=lambda r: r.start_s):
        body = json.loads(row.phones or "{}")
        words += [TgInterval(s, e, w) for w, s, e in body.get("words", []) if e > s]
        phones += [TgInterval(s, e, p) for p, s, e in body.get("phones", []) if e > s]
    end = max([duration_s, *(i.end for i in words + phones)])
    tg = tgio.Textgrid(0.0, end)
    doubt = doubt_of(rows)
    if doubt:
        note = f"DOUBTFUL ALIGNMENT, check before use: {doubt}"
        tg.addTier(tgio.IntervalTier("notes", [TgInterval(0.0, end, note)], 0.0, end))
    tg.addTier(tgio.IntervalTier("words", _no_overlap(words), 0.0, end))
    tg.addTier(tgio.IntervalTier("phones", _no_overlap(phones), 0.0, end))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.TextGrid"
        tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)
        return path.read_text()


def doubt_of(rows: list[Segment]) -> str:
    """The reasons a recording's rows carry in their doubtful (or failed) flag; empty when they carry none."""
    for f in (f for row in rows for f in row.flags):
        if f.startswith((DOUBTFUL, FAILED)):
            return f.split(": ", 1)[1]
    return ""


def _no_overlap(intervals: list) -> list:
    out = []
    for iv in sorted(intervals, key=lambda i: i.start):
        if out and iv.start < out[-1].end:
            iv = type(iv)(out[-1].end, iv.end, iv.label)
        if iv.end > iv.start:
            out.append(iv)
    return out


def commit(
    catalog: Catalog,
    storage: Storage,
    results: list[ChunkResult],
    rows: list[Segment],
    said: dict[str, Pronounced],
    training: dict[str, Training] | None = None,
    *,
    flow_run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Write the segments (replacing the recordings' earlier ones), one TextGrid per recording and an event
    each; return a report per recording, with its ``status``: ``aligned``, ``doubtful`` (its ``doubts`` say
    why) or ``failed`` (no segment, or none unflagged)."""
    from catalog.events import make_event

    # a re-run replaces a recording's segments (recomputed from the originals, never edited), in one commit
    done = sorted({r.chunk.job.recording_id for r in results})
    if done:
        catalog.replace("segments", "recording_id IN (" + ", ".join(f"'{rid}'" for rid in done) + ")", rows)
    report, events = [], []
    for rid in dict.fromkeys(r.chunk.job.recording_id for r in results):
        mine = [r for r in rows if r.recording_id == rid]
        theirs = [r for r in results if r.chunk.job.recording_id == rid]
        errors = [r.error for r in theirs if r.alignment is None]
        uri = None
        if mine:
            key = f"alignments/{rid}/{mine[0].lexicon_version.replace('/', '-')}.TextGrid"  # type: ignore[union-attr]
            storage.put(key, textgrid(mine, theirs[0].chunk.job.duration_s).encode())
            uri = storage.uri(key)
        flagged = sum(bool(r.flags) for r in mine)
        own = sum(any(not f.startswith((DOUBTFUL, FAILED)) for f in r.flags) for r in mine)  # for themselves
        doubt = doubt_of(mine)
        fatal = any(f.startswith(FAILED) for r in mine for f in r.flags)
        status = "failed" if fatal or own == len(mine) else "doubtful" if doubt else "aligned"
        dialect = theirs[0].chunk.job.dialect
        detail = {
            "segments": len(mine),
            "flagged": flagged,
            "status": status,
            "doubts": doubt.split("; ") if doubt else (["no utterance could be aligned"] if not mine else []),
            "aligners": sorted({r.aligner for r in theirs if r.alignment is not None}),
            "training": (training or {})[dialect].to_dict() if dialect in (training or {}) else None,
            "errors": errors,
            "oov": said[rid].oov,
            "textgrid": uri,
        }
        outcome = {"failed": "failure", "doubtful": "warning"}.get(
            status, "warning" if errors or flagged else "success"
        )
        events.append(make_event("alignment", [rid], outcome, detail=detail, flow_run_id=flow_run_id))
        report.append({"recording_id": rid, **detail})
    catalog.append("events", events)
    return report


def export(catalog: Catalog, storage: Storage, collection: str, fmt: str, out_dir: Path) -> list[Path]:
    """Write each aligned recording of ``collection`` to ``out_dir`` as ``<recording_id>.TextGrid`` or ``.json``."""
    rids = {r["recording_id"] for r in catalog.read("recordings").to_pylist() if r["collection"] == collection}
    rows = [Segment.from_dict(r) for r in catalog.read("segments").to_pylist() if r["recording_id"] in rids]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rid in sorted({r.recording_id for r in rows}):
        mine = sorted((r for r in rows if r.recording_id == rid), key=lambda r: r.start_s)
        if fmt == "textgrid":
            path = out_dir / f"{rid}.TextGrid"
            path.write_text(textgrid(mine, max(r.end_s for r in mine)))
        else:
            path = out_dir / f"{rid}.json"
            doc = [
                {
                    **{k: v for k, v in r.to_dict().items() if k not in ("phones", "kind", "schema_version")},
                    **json.loads(r.phones or "{}"),
                }
                for r in mine
            ]
            path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str))
        written.append(path)
    return written
