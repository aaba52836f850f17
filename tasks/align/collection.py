"""Aligning a collection: transcripts of whole sessions to their working copies, as segments under 30 s.

For each recording with a transcript and a working copy that did not fail its gate: the words are pronounced
with the bearer's dialect lexicon (bearer exceptions, lexicon, G2P, garbage phone for what none can say).
Recordings with more than one stretch of speech get an anchoring pass over the whole speech span:
pocketsphinx's en-US aligner for English dialects, else (or when it fails) a first GMM trained on provisional
utterances (short recordings whole, long ones with words spread over prepare's speech segments by length)
with a wide beam. The recording is then cut at every pause where the anchors put a word boundary inside the
pause, never by duration alone (a long pause inside one utterance is otherwise swallowed by a phone); a
stretch with no such pause for over 30 s stays whole and is flagged. The final model is trained on those
chunks, and every chunk is aligned with it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from catalog.manifests import Segment
from catalog.storage import Storage, staged
from catalog.tables import Catalog, latest_derivatives
from tasks.align import mfa_backend
from tasks.align.g2p import words_of
from tasks.align.gmm_aligner import RATE_HZ, SHIFT_S, SILENCE, Alignment, AlignmentError, GmmAligner, Interval
from tasks.align.lexicon import Lexicon, Pronounced, bearer_exceptions, build, pronounce

MAX_CHUNK_S = 30.0
MIN_CHUNK_S = 2.0
_ANCHOR_TOLERANCE_S = 0.15
_CHUNK_MARGIN_S = 0.1
_PAUSE_KEPT_S = 0.3  # of a pause at a cut, the most each chunk keeps: enough silence for the edge to be sure
ANCHOR_BEAM = 40.0
LOW_SCORE_MADS = 4.0  # a chunk this many median absolute deviations under the collection's median is flagged


@dataclass(frozen=True)
class Job:
    recording_id: str
    bearer_id: str
    dialect: str
    text: str
    words: tuple[str, ...]
    working_uri: str
    speech: tuple[tuple[float, float], ...]  # prepare's segments, seconds on the original's timeline
    duration_s: float


@dataclass(frozen=True)
class Chunk:
    job: Job
    start_s: float
    end_s: float
    words: tuple[str, ...]


def jobs(
    catalog: Catalog, storage: Storage, *, collection: str | None = None, recording_id: str | None = None
) -> tuple[list[Job], list[dict[str, str]]]:
    """What can be aligned, and what cannot with the reason (no transcript, no working copy, failed gate,
    no dialect)."""
    recordings = catalog.read("recordings").to_pylist()
    if collection is not None:
        recordings = [r for r in recordings if r["collection"] == collection]
    if recording_id is not None:
        recordings = [r for r in recordings if r["recording_id"] == recording_id]
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
        speech = tuple((s["original_start_s"], s["original_end_s"]) for s in seg_doc["segments"])
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
    """Training utterances before any model exists: the whole speech span, or words spread over the speech
    segments in proportion to duration (letters per second held constant) for a long recording."""
    if not job.speech:
        return []
    start, end = job.speech[0][0], job.speech[-1][1]
    if end - start <= MAX_CHUNK_S:
        return [Chunk(job, start, end, job.words)]
    letters = np.cumsum([len(w) for w in job.words])
    durations = np.array([e - s for s, e in job.speech])
    cuts = np.searchsorted(letters, np.cumsum(durations) / durations.sum() * letters[-1], side="left")
    chunks, first = [], 0
    for (s, e), last in zip(job.speech, cuts, strict=True):
        words = job.words[first : int(last) + 1]
        if words:
            chunks.append(Chunk(job, s, e, words))
        first = int(last) + 1
    return chunks


Anchor = tuple[int, float, float]  # transcript word index, start and end (s) in the aligned span


def anchor_pocketsphinx(audio: np.ndarray, words: tuple[str, ...]) -> list[Anchor] | None:
    """Word times from pocketsphinx's en-US aligner (it ships its acoustic model and the CMU dictionary).

    Words the CMU dictionary lacks are left out of this pass; they stay between their neighbours in the
    transcript. None when pocketsphinx finds no alignment.
    """
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=RATE_HZ, bestpath=False, loglevel="FATAL")
    known = [(i, w) for i, w in enumerate(words) if decoder.lookup_word(w) is not None]
    if not known:
        return None
    decoder.set_align_text(" ".join(w for _, w in known))
    decoder.start_utt()
    decoder.process_raw((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    found = decoder.seg() or []
    spoken = [s for s in found if s.word.split("(")[0] not in ("<s>", "</s>", "<sil>", "(NULL)", "[NOISE]")]
    if len(spoken) != len(known):
        return None
    return [(i, s.start_frame / 100, (s.end_frame + 1) / 100) for (i, _), s in zip(known, spoken, strict=True)]


def _anchor_chunks(job: Job, anchors: list[Anchor], offset_s: float) -> list[Chunk]:
    """Cut a long recording at every pause that the anchoring pass puts between two consecutive words (the
    pause in the speech segments, the words on either side of it), merging pieces shorter than
    ``MIN_CHUNK_S``: short utterances train and align better than long ones.

    A cut lies inside the pause (its middle, at most ``_PAUSE_KEPT_S`` from either side), not at the anchors'
    word edges: an anchor that ends a word early would otherwise cut the word off, and the final alignment
    could only squeeze it into what was left (on bench/align.py's long recording, "row" by 390 ms).
    """
    gaps = [(e1, s2) for (_, e1), (s2, _) in zip(job.speech, job.speech[1:], strict=False)]
    times = {i: (s + offset_s, e + offset_s) for i, s, e in anchors}
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


def align_collection(
    storage: Storage, job_list: list[Job], *, iterations: int = 25, backend: str = "gmm"
) -> tuple[list[tuple[Chunk, Alignment | None, str]], dict[str, Lexicon], dict[str, Pronounced]]:
    """Train on the collection and align every job; returns (chunk, alignment or None, error) per chunk.

    ``backend``: ``gmm``, the built-in GMM-HMM, or ``mfa``, Montreal Forced Aligner trained on the same chunks
    with the same lexicons (where the ``mfa`` command is installed). Chunking is the same for both.
    """
    if backend not in BACKENDS:
        raise AlignmentError(f"no aligner backend {backend!r}; the backends are {', '.join(BACKENDS)}")
    if backend == "mfa":
        mfa_backend.require()  # before any work is done
    by_dialect: dict[str, list[str]] = {}
    for j in job_list:
        by_dialect.setdefault(j.dialect, []).extend(j.words)
    lexicons = {d: build(storage, d, ws)[0] for d, ws in by_dialect.items()}
    said = {
        j.recording_id: pronounce(list(j.words), lexicons[j.dialect], bearer_exceptions(storage, j.bearer_id))
        for j in job_list
    }
    prons: dict[str, dict[str, list[tuple[str, ...]]]] = {d: dict(lex.entries) for d, lex in lexicons.items()}
    for j in job_list:
        prons[j.dialect].update(said[j.recording_id].pronunciations)
    audio = {j.recording_id: audio16(storage, j.working_uri) for j in job_list}

    def cut(chunk: Chunk) -> np.ndarray:
        x = audio[chunk.job.recording_id]
        return x[int(chunk.start_s * RATE_HZ) : int(chunk.end_s * RATE_HZ)]

    @cache  # trained only when some recording needs the GMM for its anchors
    def first_model() -> GmmAligner:
        model = GmmAligner(prons)
        provisional = [c for j in job_list for c in _provisional(j)]
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
        anchors = anchor_pocketsphinx(whole, j.words) if j.dialect.startswith("en") else None
        if anchors is None:
            try:
                first_pass = first_model().align(j.recording_id, whole, list(j.words), j.dialect, beam=ANCHOR_BEAM)
                anchors = [(k, w.start_s, w.end_s) for k, w in enumerate(first_pass.words)]
            except AlignmentError:
                anchors = None
        final_chunks += _anchor_chunks(j, anchors, span[0]) if anchors else _provisional(j)
    if backend == "mfa":
        return _align_with_mfa(final_chunks, prons, cut), lexicons, said
    final = GmmAligner(prons)
    final.train(
        [(f"c{i}", cut(c), list(c.words), c.job.dialect) for i, c in enumerate(final_chunks)], iterations=iterations
    )
    results: list[tuple[Chunk, Alignment | None, str]] = []
    for i, c in enumerate(final_chunks):
        try:
            results.append((c, final.align(f"c{i}", cut(c), list(c.words), c.job.dialect), ""))
        except AlignmentError as e:
            results.append((c, None, str(e)))
    return results, lexicons, said


def _align_with_mfa(
    chunks: list[Chunk], prons: dict[str, dict[str, list[tuple[str, ...]]]], cut
) -> list[tuple[Chunk, Alignment | None, str]]:
    """The chunks aligned by MFA, one training run per dialect with that dialect's lexicon. MFA's TextGrids
    carry no likelihood, so these alignments have no score (and are never flagged for a low one)."""
    found: dict[str, tuple[tuple[Interval, ...], ...]] = {}
    for dialect in dict.fromkeys(c.job.dialect for c in chunks):
        mine = [(f"c{i}", cut(c), list(c.words)) for i, c in enumerate(chunks) if c.job.dialect == dialect]
        found |= mfa_backend.align(mine, prons[dialect])
    results: list[tuple[Chunk, Alignment | None, str]] = []
    for i, c in enumerate(chunks):
        if f"c{i}" not in found:
            results.append((c, None, f"c{i}: MFA wrote no alignment: check that transcript and audio belong together"))
            continue
        words, phones = found[f"c{i}"]
        frames = round((c.end_s - c.start_s) / SHIFT_S)
        results.append((c, Alignment(f"c{i}", words, phones, float("nan"), frames), ""))
    return results


def segments(
    results: list[tuple[Chunk, Alignment | None, str]], lexicons: dict[str, Lexicon], said: dict[str, Pronounced]
) -> list[Segment]:
    """``segments`` rows on the original's timeline, flagged for review where the alignment is doubtful."""
    scores = np.array([a.loglike_per_frame for _, a, _ in results if a is not None])
    scores = scores[np.isfinite(scores)]  # MFA's alignments have no score
    median = float(np.median(scores)) if len(scores) else 0.0
    mad = float(np.median(np.abs(scores - median))) if len(scores) else 0.0
    rows = []
    for c, a, _ in results:
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
        body = {
            "words": [_shifted(w, c.start_s) for w in a.words],
            "phones": [_shifted(p, c.start_s) for p in a.phones if p.label != SILENCE],
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
    return rows


def _shifted(iv: Interval, offset_s: float) -> list[Any]:
    return [iv.label, round(iv.start_s + offset_s, 3), round(iv.end_s + offset_s, 3)]


def textgrid(rows: list[Segment], duration_s: float) -> str:
    """A Praat TextGrid (long text format, via praatio) with word and phone tiers for one recording."""
    from praatio import textgrid as tgio
    from praatio.utilities.constants import Interval as TgInterval

    words, phones = [], []
    for row in sorted(rows, key=lambda r: r.start_s):
        body = json.loads(row.phones or "{}")
        words += [TgInterval(s, e, w) for w, s, e in body.get("words", []) if e > s]
        phones += [TgInterval(s, e, p) for p, s, e in body.get("phones", []) if e > s]
    end = max([duration_s, *(i.end for i in words + phones)])
    tg = tgio.Textgrid(0.0, end)
    tg.addTier(tgio.IntervalTier("words", _no_overlap(words), 0.0, end))
    tg.addTier(tgio.IntervalTier("phones", _no_overlap(phones), 0.0, end))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.TextGrid"
        tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)
        return path.read_text()


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
    results: list[tuple[Chunk, Alignment | None, str]],
    rows: list[Segment],
    said: dict[str, Pronounced],
    *,
    flow_run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Write the segments (replacing the recordings' earlier ones), one TextGrid per recording and an event
    each; return a report per recording."""
    from catalog.events import make_event

    # a re-run replaces a recording's segments (recomputed from the originals, never edited), in one commit
    done = sorted({c.job.recording_id for c, _, _ in results})
    if done:
        catalog.replace("segments", "recording_id IN (" + ", ".join(f"'{rid}'" for rid in done) + ")", rows)
    report, events = [], []
    for rid in dict.fromkeys(c.job.recording_id for c, _, _ in results):
        mine = [r for r in rows if r.recording_id == rid]
        errors = [e for c, a, e in results if c.job.recording_id == rid and a is None]
        uri = None
        if mine:
            key = f"alignments/{rid}/{mine[0].lexicon_version.replace('/', '-')}.TextGrid"  # type: ignore[union-attr]
            duration = next(c.job.duration_s for c, _, _ in results if c.job.recording_id == rid)
            storage.put(key, textgrid(mine, duration).encode())
            uri = storage.uri(key)
        flagged = sum(bool(r.flags) for r in mine)
        outcome = "failure" if not mine else "warning" if errors or flagged else "success"
        detail = {"segments": len(mine), "flagged": flagged, "errors": errors, "oov": said[rid].oov, "textgrid": uri}
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
