"""The kokoro backend for real: the base assembled from its wheels and ported to PyTorch, phones mapped into its
vocabulary, a short style adaptation, the judges (Whisper, the speaker-ID model), and a registered version
with its lineage and listening set, deleted by revocation."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from heirloom.errors import VoiceModelError
from tasks.align import words_of
from tasks.align.g2p import g2p
from tests.voice_factory import speak, voice_archive
from voice_models.backend import Hyperparameters, Utterance, get_backend
from voice_models.evaluation import embedding, voice_of
from voice_models.kokoro_base import RATE_HZ, assemble_onnx, expected_sha256, packaged_parts, vocabulary
from voice_models.kokoro_phones import MIN_COVERAGE, check_coverage, chunks, coverage, symbols
from voice_models.phones import stressed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _synth import piper  # noqa: E402

TEXTS = (
    "The old fisherman mended his nets by the harbour every morning.",
    "She sang the ballad her grandmother taught her long ago.",
    "We walked across the frozen river before the sun came up.",
    "My father kept bees behind the chapel for forty years.",
    "The miller's daughter danced until the candles burned low.",
    "He carved a whistle from the branch of a willow tree.",
    "A lantern swung above the door of the little inn.",
    "They told stories of giants who lived beneath the mountain.",
)


def words(text: str, dialect: str = "en-us"):
    names = words_of(text)
    prons = g2p(names, dialect)
    return stressed(names, tuple(prons[w][0] for w in names), dialect)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kokoro") / "base"
    get_backend("kokoro").install_base(out)
    return out


def test_the_base_is_assembled_from_its_wheels_and_a_corrupted_part_is_refused(tmp_path: Path) -> None:
    parts = packaged_parts()
    assert len(parts) == 4
    assert assemble_onnx(tmp_path / "ok.onnx") == expected_sha256()
    assert (tmp_path / "ok.onnx").stat().st_size == 92_361_271
    copies = []
    for n, part in enumerate(parts):
        copy = tmp_path / f"part{n}.bin"
        shutil.copyfile(part, copy)
        copies.append(copy)
    with copies[2].open("r+b") as f:
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(VoiceModelError, match="corrupted"):
        assemble_onnx(tmp_path / "bad.onnx", parts=copies)
    assert not (tmp_path / "bad.onnx").exists() and not list(tmp_path.glob("bad.onnx*"))
    with pytest.raises(VoiceModelError, match="corrupted"):
        assemble_onnx(tmp_path / "short.onnx", parts=copies[:3])


def test_the_pytorch_port_matches_the_onnx_model_on_a_fixed_input(base: Path) -> None:
    import librosa
    import torch

    from voice_models.kokoro import _ported, _read
    from voice_models.kokoro import speak as onnx_speak

    doc = _read(base)
    assert doc["port"]["filled"] == 546 and doc["source_sha256"] == expected_sha256()
    model = _ported(base, doc)
    table = np.load(base / "voices.npz")["jm_kumo"]
    w = words("The north wind and the sun were disputing which was the stronger.")
    ids = chunks(w)[0]
    with torch.no_grad():
        ported, durations = model.forward_with_tokens(
            torch.LongTensor([[0, *ids, 0]]), torch.from_numpy(table[len(ids) - 1][None]), 1.0
        )
    ported = ported.numpy()
    reference = onnx_speak(base / "kokoro-v1.0.int8.onnx", table, w)
    assert np.isfinite(ported).all()
    # the int8 model rounds its durations a little differently: within 3% in length
    assert abs(len(ported) - len(reference)) / len(reference) < 0.03

    def logmel(x):
        return np.log(librosa.feature.melspectrogram(y=x, sr=RATE_HZ, n_fft=1024, hop_length=256, n_mels=80) + 1e-5)

    a, b = logmel(ported), logmel(reference)
    _, path = librosa.sequence.dtw(X=a, Y=b)
    corr = np.corrcoef(a[:, path[:, 0]].ravel(), b[:, path[:, 1]].ravel())[0, 1]
    assert corr > 0.9, corr


def test_phones_map_into_the_vocabulary_and_a_dialect_it_cannot_say_is_refused() -> None:
    vocab = vocabulary()
    assert len(vocab) == 114
    us = words("We walked across the frozen river before the sun came up.")
    assert coverage([us]).fraction == 1.0 and "ˈ" in symbols(us)
    assert all(c in vocab for c in symbols(us))
    assert symbols(((("b", "ɝ", "d")),)) == "bɜɹd" and symbols((("b", "ʌ", "ʔ", "n̩"),)) == "bʌʔᵊn"
    close = coverage([(("b", "ɝ", "d"),)])
    assert (close.exact, close.close, close.missing) == (2, 1, {})
    scots = words("Why whistle when the wheel turns, whit do you do", "en-gb-scotland")
    cov = coverage([scots])
    assert cov.fraction < MIN_COVERAGE and "ʍ" in cov.missing
    with pytest.raises(VoiceModelError, match="ʍ"):
        check_coverage(cov, "bearer b-07's training segments")
    long_text = words(" ".join(TEXTS * 3))
    pieces = chunks(long_text)
    assert len(pieces) > 1 and all(len(p) <= 510 for p in pieces)
    space = vocab[" "]
    flat = [i for p in pieces for i in (*p, space)][:-1]
    assert flat == chunks(long_text, limit=10_000)[0]  # cut between words, nothing lost


def test_whisper_reads_a_known_clip_and_not_a_mumble() -> None:
    from tasks.align import comparable
    from voice_models.evaluation import word_errors
    from voice_models.judges import whisper_en

    text = "The old fisherman mended his nets by the harbour every morning."
    clip = piper(text, 16000)
    heard = whisper_en(clip).split()
    assert word_errors(comparable(words_of(text)), heard) <= 1, heard
    mumble = piper("la la la hm la la", 16000)
    assert word_errors(comparable(words_of(text)), whisper_en(mumble).split()) >= 6
    assert comparable(["harbour", "40"]) == comparable(["harbor", "forty"]) == ["harbor", "forty"]


def test_the_second_judge_tells_two_voices_apart() -> None:
    from voice_models.judges import SpeakerID

    joe = [piper(t, 16000, seed=n) for n, t in enumerate(TEXTS)]
    robot = [soxr.resample(speak(t, "en-gb+m3"), 32000, 16000) for t in TEXTS]
    judge = SpeakerID({"joe": joe[:5], "robot": robot[:5]}, 16000)
    assert all(judge.rank(x, 16000)[0][0] == "joe" for x in joe[5:])
    assert all(judge.rank(x, 16000)[0][0] == "robot" for x in robot[5:])


def test_a_short_style_adaptation_raises_similarity_to_the_target_on_held_out_text(base: Path, tmp_path: Path) -> None:
    backend = get_backend("kokoro")
    utts = [Utterance(f"joe-{n}", "joe", t, words(t), piper(t, RATE_HZ, seed=n), RATE_HZ) for n, t in enumerate(TEXTS)]
    train, held = utts[:6], utts[6:]
    hp = Hyperparameters(preset="demo", steps=6, checkpoint_every=3)
    saved = []
    result = backend.fine_tune(base, "joe", train, tmp_path / "run", hp, on_checkpoint=saved.append)
    # each step's loss is on another utterance (batch of one), so first and last do not compare: the held-out
    # similarity below is the test that learning happened (CI once saw 0.48 then 0.53)
    assert result.steps == 6 and len(saved) == 2 and np.isfinite([result.loss_first, result.loss_last]).all()
    files = backend.export(tmp_path / "run", tmp_path / "export")
    assert [p.name for p in files] == ["voice.npy", "model.json"]
    fit = json.loads((tmp_path / "export" / "model.json").read_text())["fit"]
    target = voice_of(held)

    def similarity(model_dir: Path, speaker: str) -> float:
        return float(
            np.mean([embedding(backend.synthesize(model_dir, u.words, speaker)[0], RATE_HZ) @ target for u in held])
        )

    before = similarity(base, fit["start_voice"])
    after = similarity(tmp_path / "export", "joe")
    assert fit["style"] == "learnt" and after > before + 0.05, (before, after)
    audio, rate = backend.synthesize(tmp_path / "export", words(" ".join(TEXTS * 3)), "joe")  # over 510 phones
    assert rate == RATE_HZ and len(audio) / rate > 20 and np.isfinite(audio).all()


def test_a_kokoro_version_registers_with_lineage_and_listening_set_and_revocation_deletes_it(
    base: Path, tmp_path: Path
) -> None:
    from tasks.align import build
    from tasks.consent.revocation import carry_out
    from voice_models.training import fine_tune, install_base, register_trained

    cat, store = voice_archive(tmp_path / "archive", {"b-01": "en-us+m3", "b-02": "en-gb+f2"})
    build(store, "en-gb-scotland", words_of("why whistle when the wheel turns"))
    build(store, "en-us", words_of("why whistle when the wheel turns"))
    installed = install_base(store, "kokoro-v1", backend="kokoro", work=tmp_path / "install")
    assert installed["sha256"] == expected_sha256()
    assert installed["coverage"]["en-us"]["coverage"] == 1.0  # each dialect lexicon's coverage is reported
    assert "ʍ" in installed["coverage"]["en-gb-scotland"]["missing"]
    with pytest.raises(VoiceModelError, match="exists"):
        install_base(store, "kokoro-v1", backend="kokoro", work=tmp_path / "again")
    trained = fine_tune(
        cat, store, "b-01", "kokoro-v1", Hyperparameters(preset="demo", steps=2), work=tmp_path / "w", backend="kokoro"
    )
    row = register_trained(cat, store, trained)
    assert row.backend == "kokoro" and row.base_model_sha256 == expected_sha256()
    assert row.artifact_uri.endswith("models/b-01/v1/voice.npy")
    metrics = json.loads(row.metrics)
    assert metrics["asr"] == "whisper-tiny.en" and metrics["speaker_id_clips"] == metrics["held_out"]
    assert metrics["baseline"]["speaker"] in {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    card = store.read_bytes(store.key_of(row.model_card_uri)).decode()
    assert "## Listening set" in card and expected_sha256() in card and "second judge" in card
    stored = [o.key.rsplit("/", 1)[1] for o in store.list("models/b-01/v1/")]
    listening = sorted(n for n in stored if n.startswith("listening-"))
    assert listening == ["listening-1-base.flac", "listening-1-bearer.flac", "listening-1-model.flac"]
    assert all(name in card for name in listening)

    # the version speaks an exhibit's approved line: checked, watermarked and served as the bearer's clip
    from tasks.consent import grant
    from tasks.exhibits import add_exhibit, approve, submit
    from tasks.generation import generate_text, queued
    from tasks.watermark import WatermarkKey, detect
    from voice_models.synthesis import load_voice

    cat.update("models", f"model_id = '{row.model_id}'", {"status": "'active'"})  # the gate has its own tests
    cat.update("bearers", "bearer_id = 'b-01'", {"dialect": "'en-us'"})
    grant(cat, store, bearer_id="b-01", grantor_type="self", grantor_id="b-01", audiences=["public"],
          scopes=["voice_synthesis", "exhibit_generation", "model_training"])  # fmt: skip
    exhibit, _ = add_exhibit(cat, "kiosk-1", venue="Hall", audience="public", purpose="education")
    # two sentences: a one-line clip of about 3 s sits at the watermark's 3.3 s minimum and is refused by it
    rows = submit(
        cat, exhibit, "b-01", ["The water is wide, I cannot get over. And neither have I wings to fly."], "flac"
    )
    approve(cat, rows[0].request_id, by="cur-1")
    key = WatermarkKey(secret=bytes(range(32)))
    (queued_row,) = queued(cat, request_id=rows[0].request_id)
    done = generate_text(cat, store, queued_row, voice=load_voice(cat, store, "b-01"), key=key)
    assert done.state == "ready", done.reason
    (clip,) = cat.read("clips").to_pylist()
    assert clip["model_id"] == row.model_id
    path = tmp_path / "clip.flac"
    path.write_bytes(store.read_bytes(store.key_of(clip["uri"])))
    audio, rate = sf.read(str(path), dtype="float32")
    assert detect(audio, rate, key).payload.hex() == clip["watermark_payload"]

    carry_out(cat, store, "b-01", ["model_training"], "withdrawn")
    assert not list(store.list("models/b-01/v1/"))
    assert not store.exists(store.key_of(clip["uri"]))  # the clip goes with the model it came from


def test_base_install_command_prints_json_and_refuses_a_backend_without_a_packaged_base(tmp_path: Path) -> None:
    from tests.test_cli_e2e import cli

    archive = tmp_path / "archive"
    cli("init", "--json", archive=archive)
    out = json.loads(cli("base", "install", "kokoro-v1", "--json", archive=archive).stdout)
    assert out["sha256"] == expected_sha256() and out["backend"] == "kokoro" and len(out["speakers"]) == 5
    assert (archive / "models" / "base" / "kokoro-v1" / f"kokoro-{expected_sha256()[:16]}.pt").exists()
    again = cli("base", "install", "kokoro-v1", archive=archive, check=False)
    assert again.returncode != 0 and "exists" in again.stderr and not again.stdout
    vits = cli("base", "install", "v", "--backend", "vits", archive=archive, check=False)
    assert vits.returncode != 0 and "heirloom base train" in vits.stderr


def test_a_base_whose_onnx_file_changed_and_an_unknown_preset_are_refused(tmp_path: Path) -> None:
    backend = get_backend("kokoro")
    with pytest.raises(VoiceModelError, match="no kokoro preset 'tiny'; use one of demo, small, standard"):
        backend.resolve(Hyperparameters(preset="tiny"))
    base = tmp_path / "base"
    base.mkdir()
    (base / "model.json").write_text(json.dumps({"backend": "kokoro", "kind": "base", "source_sha256": "0" * 64}))
    (base / "kokoro-v1.0.int8.onnx").write_bytes(b"not the model that was installed")
    with pytest.raises(VoiceModelError, match="does not match its model.json's SHA-256; install the base again"):
        backend.fine_tune(base, "b-1", [], tmp_path / "run", Hyperparameters(preset="demo"), on_checkpoint=print)
    (base / "model.json").write_text(json.dumps({"backend": "vits"}))
    with pytest.raises(VoiceModelError, match="holds a 'vits' model, not a kokoro one"):
        backend.speakers(base)
