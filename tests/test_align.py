"""The GMM-HMM aligner (monophones, then LDA+MLLT tied triphones): flat-start training on generated speech
lands near espeak-ng's own timings; unknown words, empty transcripts and transcripts that do not fit the audio
fail with reasons; long recordings are cut inside their pauses; the MFA backend's plumbing."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tasks.align import mfa_backend
from tasks.align.espeak_timing import QUIET, Espeak, stop_closures
from tasks.align.g2p import g2p, words_of
from tasks.align.gmm_aligner import AlignmentError, GmmAligner

TEXTS = [
    "The ferryman waited by the river until the evening tide came in.",
    "Her brother carried the fiddle over the hill to the wedding.",
    "We heard the old songs sung again in the kitchen after supper.",
    "A grey mare stood at the gate while the rain fell on the meadow.",
    "They told us the story of the miller and his three clever daughters.",
    "In winter the children gathered round the fire to hear the tales.",
    "The shepherd whistled to his dogs across the frozen valley.",
    "My uncle mended the nets and sang a verse for every knot.",
    "The church bell rang twice before the boats went out to sea.",
    "Nobody could dance the reel as lightly as my grandmother did.",
]


@pytest.fixture(scope="module")
def trained() -> tuple[GmmAligner, list, dict]:
    speaker = Espeak()
    data, refs = [], {}
    for voice in ("en-us", "en-gb-scotland"):
        for i, text in enumerate(TEXTS):
            audio, phones, words = speaker.speak(text, voice)
            data.append((f"{voice}-{i}", audio, words_of(text), voice))
            refs[f"{voice}-{i}"] = stop_closures(audio, phones, words)[1]
    lexicons = {v: g2p(sorted({w for t in TEXTS for w in words_of(t)}), v) for v in ("en-us", "en-gb-scotland")}
    aligner = GmmAligner(lexicons)
    history = aligner.train(data, iterations=20, triphone_iterations=8)
    assert history[-1] > history[-8] and history[19] > history[0]  # each stage raised the likelihood
    assert len(history) == 20 + 2 * 8 and aligner.leaves > 3 * len(aligner.phone_id)  # the tree split phone states
    return aligner, data, refs


def test_word_boundaries_land_near_the_synthesiser_timings(trained) -> None:
    aligner, data, refs = trained
    errors = []
    for utt, audio, words, voice in data:
        ali = aligner.align(utt, audio, words, voice)
        assert [w.label for w in ali.words] == words
        assert all(a.end_s <= b.start_s + 1e-6 for a, b in zip(ali.phones, ali.phones[1:], strict=False))
        if len(refs[utt]) == len(ali.words):
            errors += [abs(w.start_s - r) for w, r in zip(ali.words, refs[utt], strict=True)]
    errors_ms = np.array(errors) * 1000
    assert len(errors_ms) > 100
    assert np.median(errors_ms) < 15 and np.mean(errors_ms <= 50) > 0.9


def test_stop_closures_move_plosives_back_over_their_silence() -> None:
    audio, phones, words = Espeak().speak("Take the cattle to the top of the hill.", "en-us")
    moved, moved_words = stop_closures(audio, phones, words)
    shifted = [(p, old, new) for (p, old), (_, new) in zip(phones, moved, strict=True) if new != old]
    assert {p[:1] for p, _, _ in shifted} <= set("ptkbdɡ") and len(shifted) >= 3
    for _, old, new in shifted:
        assert 0.01 <= old - new <= 0.15
        closure = audio[int(new * 16000) + 16 : int((new + 0.01) * 16000)]
        assert np.abs(closure).max() < QUIET  # the new start opens the closure's silence
        assert np.abs(audio[int(new * 16000) - 32 : int(new * 16000) - 16]).max() >= QUIET  # which begins there
    assert moved_words != words and all(w in [t for _, t in moved] for w in moved_words)


def test_silent_edges_are_seen_in_digital_silence_and_in_a_noisy_recordings_pauses() -> None:
    from tasks.align.gmm_aligner import silent_edges

    speech, _, _ = Espeak().speak(TEXTS[0], "en-us")
    speech = speech[np.flatnonzero(np.abs(speech) > 1e-3)[0] : np.flatnonzero(np.abs(speech) > 1e-3)[-1]]
    pause = np.zeros(4000, np.float32)
    padded = np.concatenate([pause, speech, pause])
    assert silent_edges(padded) == (True, True)
    noise = np.random.default_rng(0).normal(size=len(padded)).astype(np.float32)
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2)) * 10 ** (-25 / 20)  # 25 dB SNR
    assert silent_edges(padded + noise) == (True, True)
    assert silent_edges(np.concatenate([pause, speech]) + noise[: len(speech) + 4000]) == (True, False)
    assert silent_edges(speech + noise[: len(speech)]) == (False, False)


def test_unknown_words_empty_and_mismatched_transcripts_fail_with_reasons(trained) -> None:
    aligner, data, _ = trained
    utt, audio, words, voice = data[0]
    with pytest.raises(AlignmentError, match="not in the en-us lexicon: zebra"):
        aligner.align(utt, audio, [*words, "zebra"], voice)
    with pytest.raises(AlignmentError, match="empty transcript"):
        aligner.align(utt, audio, [], voice)
    with pytest.raises(AlignmentError, match="does not fit the audio"):
        aligner.align(utt, audio[: len(audio) // 6], words * 3, voice)


def test_a_long_recording_is_cut_at_anchored_pauses_not_by_duration() -> None:
    from tasks.align.collection import Job, _anchor_chunks
    from tasks.align.second_opinion import word_times
    from tasks.prepare.vad import speech_regions

    speaker, rng = Espeak(), np.random.default_rng(2)
    pieces, words = [], []
    for text in TEXTS[:8]:
        audio, _, _ = speaker.speak(text, "en-gb-scotland")
        pieces += [audio, np.zeros(int(rng.uniform(0.8, 2.0) * 16000), np.float32)]
        words += words_of(text)
    mix = np.concatenate(pieces) + rng.normal(0, 0.003, sum(len(p) for p in pieces)).astype(np.float32)
    speech = tuple(speech_regions(mix, 16000))
    job = Job("r", "b", "en-gb-scotland", "", tuple(words), "", speech, len(mix) / 16000)
    span = (speech[0][0], speech[-1][1])
    anchors = word_times(mix[int(span[0] * 16000) : int(span[1] * 16000)], job.words)
    assert anchors is not None and len(anchors) >= 0.9 * len(words)
    chunks = _anchor_chunks(job, anchors, span[0])
    assert len(chunks) >= 4 and all(c.end_s - c.start_s < 30 for c in chunks)
    assert [w for c in chunks for w in c.words] == words  # every word once, in order
    firsts = {c.words[0] for c in chunks}
    assert firsts <= {words_of(t)[0] for t in TEXTS[:8]}  # cuts fall between sentences, at the pauses
    gaps = [(e1, s2) for (_, e1), (s2, _) in zip(speech, speech[1:], strict=False)]
    for before, after in zip(chunks, chunks[1:], strict=False):  # inside the pause, none of a word cut off
        assert any(g0 <= before.end_s <= after.start_s <= g1 for g0, g1 in gaps)


@pytest.mark.skipif(not mfa_backend.available(), reason="mfa is not installed")
def test_the_mfa_backend_reads_back_word_tiers(trained) -> None:

    aligner, data, _ = trained
    utts = [(u, a, w) for u, a, w, v in data if v == "en-us"]
    result = mfa_backend.align(utts, aligner.lexicons["en-us"])
    assert set(result) == {u for u, _, _ in utts}
    assert all([i.label for i in words] == w for (u, _, w), (words, _) in zip(utts, result.values(), strict=True))


def test_the_mfa_backend_says_when_mfa_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from catalog.storage import open_storage
    from tasks.align import mfa_backend
    from tasks.align.collection import align_collection

    monkeypatch.setattr(mfa_backend.shutil, "which", lambda name: None)
    with pytest.raises(mfa_backend.MfaMissing, match="not installed"):
        mfa_backend.align([], {})
    with pytest.raises(mfa_backend.MfaMissing, match="--backend gmm"):  # before any work, with the fix
        align_collection(open_storage(str(tmp_path)), [], backend="mfa")
    with pytest.raises(AlignmentError, match="no aligner backend 'hmm'; the backends are gmm, mfa"):
        align_collection(open_storage(str(tmp_path)), [], backend="hmm")


_STAND_IN_MFA = """#!{python}
# `mfa train CORPUS DICT MODEL --output_directory OUT`: one TextGrid per .lab, its words spread evenly
import sys
from pathlib import Path
import soundfile as sf
from praatio import textgrid as tgio
args = [a for a in sys.argv[2:] if not a.startswith("--")]
corpus, dictionary, out = Path(args[0]), Path(args[1]), Path(sys.argv[sys.argv.index("--output_directory") + 1])
prons = {{}}
for line in dictionary.read_text().splitlines():
    word, phones = line.split("\t")
    prons.setdefault(word, phones.split())
out.mkdir(parents=True)
for lab in corpus.glob("*.lab"):
    words = lab.read_text().split()
    end = sf.info(str(lab.with_suffix(".wav"))).duration
    step = end / len(words)
    word_tier = [(k * step, (k + 1) * step, w) for k, w in enumerate(words)]
    phone_tier = []
    for start, stop, w in word_tier:
        each = (stop - start) / len(prons[w])
        phone_tier += [(start + j * each, start + (j + 1) * each, p) for j, p in enumerate(prons[w])]
    tg = tgio.Textgrid(0.0, end)
    tg.addTier(tgio.IntervalTier("words", word_tier, 0.0, end))
    tg.addTier(tgio.IntervalTier("phones", phone_tier, 0.0, end))
    tg.save(str(out / (lab.stem + ".TextGrid")), format="long_textgrid", includeBlankSpaces=True)
"""


def test_the_mfa_backend_option_turns_mfas_textgrids_into_segments(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The plumbing of ``--backend mfa`` (chunks out, TextGrids back, segments without a score), with a
    stand-in for the ``mfa`` command; the real MFA runs in the test above wherever it is installed."""
    import json
    import sys

    import soundfile as sf

    from catalog.storage import open_storage
    from tasks.align.collection import Job, align_collection, segments

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mfa").write_text(_STAND_IN_MFA.format(python=sys.executable))
    (bin_dir / "mfa").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    store = open_storage(str(tmp_path / "archive"))
    audio, _, _ = Espeak().speak(TEXTS[0], "en-us")
    sf.write(str(tmp_path / "a.flac"), audio, 16000)
    store.put("a.flac", (tmp_path / "a.flac").read_bytes())
    duration = len(audio) / 16000
    words = tuple(words_of(TEXTS[0]))
    job = Job("r1", "b1", "en-us", TEXTS[0], words, store.uri("a.flac"), ((0.0, duration),), duration)
    results, lexicons, said, training = align_collection(store, [job], backend="mfa")
    rows = segments(results, lexicons, said, training)
    assert len(rows) == 1 and rows[0].score is None and rows[0].text == " ".join(words)
    body = json.loads(rows[0].phones)
    assert [w for w, _, _ in body["words"]] == list(words)
    assert [p for p, _, _ in body["phones"]] == [p for w in words for p in lexicons["en-us"].entries[w][0]]


def test_recordings_that_cannot_be_aligned_say_why() -> None:
    from tasks.align.collection import _skip_reason

    rec = {"transcript": "The water is wide."}
    passed = {"gate": "pass", "gate_reasons": []}
    assert _skip_reason({"transcript": "  1974 "}, passed, "en-us") == "no transcript"
    assert _skip_reason(rec, None, "en-us").startswith("no working copy: run `heirloom prepare`")
    failed = {"gate": "fail", "gate_reasons": ["1 dropout(s), first at 2.00 s"]}
    assert _skip_reason(rec, failed, "en-us") == "working copy failed its gate (1 dropout(s), first at 2.00 s)"
    assert _skip_reason(rec, passed, None).startswith("no dialect for the recording or its bearer")
    assert _skip_reason(rec, {"gate": "review", "gate_reasons": ["DNSMOS OVRL 2.1 (< 2.5)"]}, "en-us") == ""
