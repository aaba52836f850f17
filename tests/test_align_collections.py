"""Collections as archives hold them, through prepare's real chain and the align stage: a recording of several
sentences is cut at every pause; a minute of one bearer aligns within tolerance; a wrong transcript fails with its
reason; a doubtful alignment's TextGrid says so; noise-free speech passes the gate and a true dropout fails it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from catalog.storage import open_storage
from catalog.tables import Catalog
from tasks.align import commit, textgrid
from tasks.align.collection import DOUBTFUL, Job, align_collection, segments
from tasks.align.espeak_timing import Espeak, sentences_with_pauses, word_start_errors
from tasks.align.g2p import words_of
from tasks.prepare.chain import prepare_file

SENTENCES = [
    "The lighthouse keeper wrote every storm into his book.",
    "On market days the square was full of cattle and carts.",
    "My grandfather could whistle any tune after hearing it once.",
    "The bridge was washed away the spring after the great flood.",
    "She kept the letters from America in a biscuit tin.",
    "Every child in the glen learnt the names of the hills.",
    "The ferry only sailed when the wind came from the west.",
    "They danced in the barn until the lamps ran out of oil.",
    "An old woman sold herrings from a basket at the harbour.",
    "The schoolmaster rang a hand bell at nine every morning.",
    "We gathered blackberries along the railway line in August.",
    "The miller's dog would follow anyone who carried bread.",
    "His father had walked to the city to find work in the mills.",
    "At midsummer the whole village climbed the hill for the bonfire.",
    "The weaver's cottage stood empty for thirty years.",
    "Nobody fished on the loch on the day of the funeral.",
    "The postman brought news of the wedding on a wet Tuesday.",
]


def _recording(speaker: Espeak, voice: str, texts: list[str], seed: int, floor_db: float | None):
    """Sentences with pauses of 0.6-1.8 s, the words, their true starts."""
    return sentences_with_pauses(
        speaker, voice, texts, np.random.default_rng(seed), floor_db=floor_db, pause_s=(0.6, 1.8)
    )


def _prepared_job(tmp: Path, store, rid: str, voice: str, audio: np.ndarray, words: list[str]) -> Job:
    sf.write(tmp / f"{rid}.wav", audio, 16000, subtype="PCM_16")
    prepared = prepare_file(tmp / f"{rid}.wav", tmp / f"{rid}.flac")
    assert prepared.gate != "fail", prepared.gate_reasons
    store.put(f"{rid}.flac", (tmp / f"{rid}.flac").read_bytes())
    uri = store.uri(f"{rid}.flac")
    return Job(rid, f"b-{rid}", voice, " ".join(words), tuple(words), uri, prepared.speech_regions, len(audio) / 16000)


def _word_errors(rows, ref) -> np.ndarray:
    aligned = [w for r in sorted(rows, key=lambda r: r.start_s) for w in json.loads(r.phones)["words"]]
    return np.abs(word_start_errors(ref, aligned))


def test_a_recording_of_sentences_is_cut_at_every_pause_between_them(tmp_path: Path) -> None:
    speaker = Espeak()
    store = open_storage(str(tmp_path / "archive"))
    texts = SENTENCES[:5]
    audio, words, _ = _recording(speaker, "en-gb-x-rp", texts, 1, -60.0)
    job = _prepared_job(tmp_path, store, "r1", "en-gb-x-rp", audio, words)
    assert len(job.speech) >= len(texts)  # the VAD's regions, not prepare's packed segments
    results, lexicons, said, training = align_collection(store, [job], iterations=10)
    assert [r.chunk.words for r in results] == [tuple(words_of(t)) for t in texts]  # one utterance a sentence
    gaps = [(e1, s2) for (_, e1), (s2, _) in zip(job.speech, job.speech[1:], strict=False)]
    for before, after in zip(results, results[1:], strict=False):
        assert any(g0 <= before.chunk.end_s <= after.chunk.start_s <= g1 for g0, g1 in gaps)
    rows = segments(results, lexicons, said, training)
    assert all(json.loads(r.phones)["aligner"] == "gmm+pocketsphinx" for r in rows)


def test_one_minute_of_one_bearer_aligns_within_tolerance(tmp_path: Path) -> None:
    speaker = Espeak()
    store = open_storage(str(tmp_path / "archive"))
    audio, words, ref = _recording(speaker, "en-us-nyc", SENTENCES, 2, -60.0)
    assert len(audio) / 16000 >= 55
    job = _prepared_job(tmp_path, store, "r1", "en-us-nyc", audio, words)
    results, lexicons, said, training = align_collection(store, [job])
    rows = segments(results, lexicons, said, training)
    errors = _word_errors(rows, ref)
    assert len(errors) > 60
    assert np.mean(errors <= 0.02) >= 0.7 and np.mean(errors <= 0.05) >= 0.9
    assert not any(f.startswith(DOUBTFUL) for r in rows for f in r.flags)
    assert training["en-us-nyc"].utterances >= len(SENTENCES) - 2 and training["en-us-nyc"].speech_s > 40


def test_a_wrong_transcript_is_reported_as_failed_with_its_reason(tmp_path: Path) -> None:
    speaker = Espeak()
    store = open_storage(str(tmp_path / "archive"))
    catalog = Catalog(store)
    catalog.init()
    audio, _, _ = _recording(speaker, "en-gb-x-rp", SENTENCES[:4], 3, -60.0)
    wrong = [w for t in SENTENCES[8:12] for w in words_of(t)]  # another recording's transcript
    job = _prepared_job(tmp_path, store, "r1", "en-gb-x-rp", audio, wrong)
    results, lexicons, said, training = align_collection(store, [job], iterations=10)
    rows = segments(results, lexicons, said, training)
    [report] = commit(catalog, store, results, rows, said, training)
    assert report["status"] == "failed", report
    assert any("transcript" in d for d in report["doubts"] + report["errors"]), report
    assert not [r for r in rows if not r.flags]  # nothing of it is fit to train on


GERMAN = [
    "Am Brunnen vor dem Tore, da steht ein Lindenbaum.",
    "Die Gedanken sind frei, wer kann sie erraten.",
    "Der Wind wehte kalt über das Moor und die Felder.",
    "Im Frühling kamen die Schwalben zurück in die alte Scheune.",
    "Meine Großmutter erzählte diese Geschichte jeden Winter.",
    "Der Geiger spielte, bis die Kerzen heruntergebrannt waren.",
    "Niemand weiß mehr, wer die Sage von der Glocke zuerst erzählte.",
]


def test_the_textgrid_of_a_doubtful_alignment_says_so(tmp_path: Path) -> None:
    """German has no pretrained second opinion: under a minute of it is too little for the GMM alone."""
    speaker = Espeak()
    store = open_storage(str(tmp_path / "archive"))
    catalog = Catalog(store)
    catalog.init()
    audio, words, _ = _recording(speaker, "de", GERMAN, 5, -60.0)
    job = _prepared_job(tmp_path, store, "r1", "de", audio, words)
    results, lexicons, said, training = align_collection(store, [job], iterations=10)
    rows = segments(results, lexicons, said, training)
    [report] = commit(catalog, store, results, rows, said, training)
    assert report["status"] == "doubtful" and report["aligners"] == ["gmm"]
    assert any("no pretrained model covers de" in d for d in report["doubts"]), report
    assert all(any(f.startswith(DOUBTFUL) for f in r.flags) for r in rows)  # kept out of training
    grid = store.read_bytes(store.key_of(report["textgrid"])).decode()
    assert '"notes"' in grid and "DOUBTFUL ALIGNMENT" in grid and "no pretrained model covers de" in grid
    assert "DOUBTFUL" not in textgrid([replace(r, flags=()) for r in rows], job.duration_s)


def test_noise_free_speech_passes_the_gate_and_a_true_dropout_fails_it(tmp_path: Path) -> None:
    audio, _, _ = _recording(Espeak(), "en-gb-x-rp", SENTENCES[:3], 4, None)
    assert np.sum(audio == 0) > 16000  # digital silence in every pause and stop closure
    sf.write(tmp_path / "clean.wav", audio, 16000, subtype="PCM_16")
    clean = prepare_file(tmp_path / "clean.wav", tmp_path / "clean.flac")
    assert clean.gate == "review" and clean.metrics["dropouts_s"] == []
    assert clean.metrics["digital_silence"]["runs"] >= 1  # counted (3 to 5 here), not failed
    assert any("digital silence" in r for r in clean.gate_reasons)

    frames = np.sqrt(np.mean(audio[: len(audio) // 800 * 800].reshape(-1, 800) ** 2, axis=1))
    vowel = int(np.argmax(frames)) * 800 + 300  # inside the loudest 50 ms: a sustained vowel
    broken = audio.copy()
    broken[vowel : vowel + 240] = 0.0  # 15 ms of lost samples
    sf.write(tmp_path / "broken.wav", broken, 16000, subtype="PCM_16")
    failed = prepare_file(tmp_path / "broken.wav", tmp_path / "broken.flac")
    assert failed.gate == "fail"
    assert failed.metrics["dropouts_s"] == [pytest.approx(vowel / 16000, abs=0.002)]
    assert any(r.startswith("1 dropout") for r in failed.gate_reasons)


def _aligned_recording(catalog: Catalog, store, rid: str, *, gate: str, flags: tuple[tuple[str, ...], ...]) -> None:
    """A recording with a working copy and aligned segments, as an earlier align run leaves them."""
    from catalog.manifests import Derivative, Recording, Segment

    text = "the ferry only sailed when the wind came from the west"
    catalog.append(
        "recordings",
        [
            Recording(
                recording_id=rid,
                bearer_id="b-1",
                collection="old",
                source_uri=f"/in/{rid}.wav",
                original_uri=f"/originals/{rid}.wav",
                format="wav",
                codec="pcm_16",
                sample_rate=16000,
                channels=1,
                duration_s=10.0,
                size_bytes=1,
                transcript=f"{text} {text}",
                dialect="en-gb-x-rp",
            )
        ],
    )
    store.put(f"working/{rid}.segments.json", json.dumps({"segments": [], "speech_regions": [[0.5, 9.5]]}).encode())
    metrics = json.dumps({"segments_uri": store.uri(f"working/{rid}.segments.json")})
    reasons = ("1 dropout(s), first at 2.00 s",) if gate == "fail" else ()
    uri = store.uri(f"working/{rid}.flac")
    catalog.append(
        "derivatives", [Derivative(rid, "c" * 64, uri, 32000, 10.0, gate, "{}", metrics=metrics, gate_reasons=reasons)]
    )  # type: ignore[arg-type]
    rows = [
        Segment(f"seg-{rid[:8]}-{k}", rid, 0.5 + 5 * k, 4.5 + 5 * k, text, "{}", "en-gb-x-rp", flags=f)
        for k, f in enumerate(flags)
    ]
    catalog.append("segments", rows)


def test_the_pool_takes_other_recordings_unflagged_segments_only(tmp_path: Path) -> None:
    from tasks.align import pool

    store = open_storage(str(tmp_path / "archive"))
    catalog = Catalog(store)
    catalog.init()
    good, failed = "a" * 64, "b" * 64
    _aligned_recording(catalog, store, good, gate="pass", flags=((), ("low_score:-90.0",)))
    _aligned_recording(catalog, store, failed, gate="fail", flags=((), ()))
    chunks = pool(catalog, store, set())
    assert [(c.job.recording_id, c.start_s, c.end_s) for c in chunks] == [(good, 0.4, 4.6)]  # with margins
    assert chunks[0].words == tuple(words_of("the ferry only sailed when the wind came from the west"))
    assert chunks[0].job.dialect == "en-gb-x-rp" and chunks[0].job.speech == ((0.5, 9.5),)
    assert pool(catalog, store, {good}) == []  # the batch being aligned is never its own pool
