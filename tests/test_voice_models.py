"""Voice models for real, at a tiny size on CPU: the VITS backend learns, resumes, adds the bearer and speaks;
the train flow registers a version with its lineage, and registers nothing when consent goes mid-training."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from catalog.storage import open_storage
from catalog.tables import Catalog
from heirloom.errors import ConsentError, VoiceModelError
from tasks.consent.revocation import carry_out
from tests.voice_factory import SENTENCES, VOICES, speak, voice_archive
from voice_models.backend import Hyperparameters, get_backend
from voice_models.dataset import build_dataset
from voice_models.evaluation import evaluate, split_held_out
from voice_models.phones import VOCABULARY, encode
from voice_models.registry import versions
from voice_models.training import fine_tune, load_utterances, register_trained, train_base

TINY = Hyperparameters(preset="tiny", steps=6, checkpoint_every=3, batch_size=4)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, object, Path]:
    root = tmp_path_factory.mktemp("voice") / "archive"
    cat, store = voice_archive(root)
    work = tmp_path_factory.mktemp("base-work")
    train_base(cat, store, "tiny-base", replace(TINY, steps=8), work=work)
    return cat, store, root


def utterances(cat, store, bearer: str):
    return load_utterances(cat, store, build_dataset(cat, bearer).items, bearer, 16000)


def test_phone_vocabulary_encodes_every_shared_phone_and_refuses_others() -> None:
    codes = {encode(((p,),)) for p in VOCABULARY[1:]}
    assert len(codes) == len(VOCABULARY) - 1 and all(len(c) == 1 for c in codes)
    assert len(encode((("ɛ̃",),))) == 2  # an unlisted phone is spelt with its symbols
    assert encode((("ð", "ə"), ("w", "ɔː"))) == encode((("ð", "ə"),)) + encode(((" ",),)) + encode((("w", "ɔː"),))
    with pytest.raises(VoiceModelError, match="shared IPA phone set"):
        encode((("Q1",),))


def test_fine_tune_lowers_loss_resumes_after_a_kill_adds_the_speaker_and_speaks(archive, tmp_path: Path) -> None:
    cat, store, root = archive
    backend = get_backend("vits")
    base = tmp_path / "base"
    shutil.copytree(root / "models" / "base" / "tiny-base", base)
    assert backend.speakers(base) == ["b-01", "b-02", "b-03"]
    data = utterances(cat, store, "b-01")
    data = [replace(u, speaker="newcomer") for u in data]  # a voice the base has no row for

    class Killed(Exception):
        pass

    def kill_at_first_checkpoint(path: Path) -> None:
        assert path.exists()
        raise Killed

    hp = replace(TINY, steps=24, checkpoint_every=12)
    with pytest.raises(Killed):
        backend.fine_tune(base, "newcomer", data, tmp_path / "run", hp, on_checkpoint=kill_at_first_checkpoint)
    assert torch.load(tmp_path / "run" / "checkpoint.pth", weights_only=False)["step"] == 12
    result = backend.fine_tune(base, "newcomer", data, tmp_path / "run", hp, on_checkpoint=lambda p: None)
    assert result.resumed_from_step == 12 and result.steps == 24
    assert result.loss_last < result.loss_first

    files = backend.export(tmp_path / "run", tmp_path / "export")
    weights = torch.load(tmp_path / "export" / "generator.pth", weights_only=True)
    assert not any(k.startswith("disc.") for k in weights) and {p.name for p in files} == {
        "generator.pth",
        "model.json",
    }
    assert weights["emb_g.weight"].shape[0] == 4 and backend.speakers(tmp_path / "export")[-1] == "newcomer"
    audio, rate = backend.synthesize(tmp_path / "export", data[0].words, "newcomer")
    assert rate == 16000 and len(audio) > rate // 4 and np.isfinite(audio).all() and np.sqrt(np.mean(audio**2)) > 1e-3
    with pytest.raises(VoiceModelError, match="no speaker"):
        backend.synthesize(tmp_path / "export", data[0].words, "b-99")


def test_train_registers_a_candidate_with_lineage_card_and_metrics(archive, tmp_path: Path) -> None:
    cat, store, _ = archive
    trained = fine_tune(cat, store, "b-02", "tiny-base", TINY, work=tmp_path)
    row = register_trained(cat, store, trained)
    assert (row.model_id, row.status, row.version) == ("b-02-v1", "candidate", 1)
    assert row.dataset_manifest_sha256 == build_dataset(cat, "b-02").sha256 and row.base_model == "tiny-base"
    assert row.artifact_uri.endswith("models/b-02/v1/generator.pth") and len(row.artifact_sha256) == 64
    card = store.read_bytes(store.key_of(row.model_card_uri)).decode()
    assert "tiny-base" in card and row.dataset_manifest_sha256 in card
    metrics = json.loads(row.metrics)
    for m in (metrics, metrics["baseline"]):  # a few steps of a tiny model make noise: no voice to compare
        assert {"similarity_to_bearer", "similarity_to_others"} <= m.keys() and 0 <= m["wer"] and 1 <= m["dnsmos_ovrl"]
    assert metrics["held_out"] == 1 and metrics["asr"] == "whisper-tiny.en"
    assert not list(store.list(trained.run_prefix)), "the run's checkpoints stay behind after registration"
    _, held = split_held_out([f"seg-x-{n}" for n in range(len(SENTENCES))])
    assert len(held) == 1


def test_evaluation_tells_the_bearer_from_other_voices_and_reads_the_words(archive) -> None:
    cat, store, _ = archive
    held = utterances(cat, store, "b-01")[:2]
    others = utterances(cat, store, "b-02")[:3] + utterances(cat, store, "b-03")[:3]
    texts = {u.words: u.text for u in held}

    def voice(name: str):
        return lambda words: (speak(texts[words], name), 32000)

    same = evaluate(voice(VOICES["b-01"]), held, others, language="en")
    other = evaluate(voice(VOICES["b-02"]), held, others, language="en")
    mumble = evaluate(lambda words: (speak("la la la hm la", VOICES["b-01"]), 32000), held, others, language="en")
    assert same["similarity_to_bearer"] > same["similarity_to_others"] + 0.05
    assert other["similarity_to_bearer"] < same["similarity_to_bearer"]
    assert same["wer"] < 0.6 and mumble["wer"] > same["wer"] + 0.3
    assert other["similarity_to_others"] > other["similarity_to_bearer"]  # b-02's voice is taken for b-02
    assert evaluate(voice(VOICES["b-01"]), held, others, language="kw")["wer"] is None  # no Cornish ASR here


def test_concurrent_trainings_of_one_bearer_get_consecutive_versions(archive, tmp_path: Path) -> None:
    cat, store, _ = archive
    trained = fine_tune(cat, store, "b-03", "tiny-base", TINY, work=tmp_path / "a")
    copies = []
    for name in ("x", "y"):
        shutil.copytree(trained.export_dir, tmp_path / name)
        copies.append(replace(trained, export_dir=str(tmp_path / name)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(lambda t: register_trained(cat, store, t), copies))
    assert sorted(r.version for r in rows) == [1, 2]
    assert {r.artifact_uri for r in rows} == {store.uri(f"models/b-03/v{v}/generator.pth") for v in (1, 2)}


def test_training_refuses_a_bearer_without_eligible_segments_and_a_missing_base(archive, tmp_path: Path) -> None:
    cat, store, _ = archive
    from tests.consent_factory import add_bearer

    add_bearer(cat, "b-09")
    with pytest.raises(VoiceModelError, match="0 eligible segments"):
        fine_tune(cat, store, "b-09", "tiny-base", TINY, work=tmp_path)
    with pytest.raises(VoiceModelError, match="heirloom base train nope"):
        fine_tune(cat, store, "b-01", "nope", TINY, work=tmp_path)


def test_revocation_during_training_registers_nothing_and_deletes_the_weights(
    tmp_path: Path, prefect_harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.train

    cat, store = voice_archive(tmp_path / "archive", {"b-01": "en-us+m3", "b-02": "en-us+f2"})
    archive = str(tmp_path / "archive")
    train_base(cat, store, "tiny-base", TINY, work=tmp_path / "base")
    seen = {}

    def train_then_revoke(*args, **kwargs):
        trained = fine_tune(*args, **kwargs)
        seen["trained"] = trained
        carry_out(Catalog(open_storage(archive)), open_storage(archive), "b-01", ["model_training"], "withdrawn")
        return trained

    monkeypatch.setattr(flows.train, "fine_tune", train_then_revoke)
    with pytest.raises(ConsentError, match="may no longer train a model"):
        flows.train.train(
            "b-01", "tiny-base", archive=archive, backend="vits", hyperparameters={"preset": "tiny", "steps": 3}
        )
    cat = Catalog(open_storage(archive))
    assert versions(cat, "b-01") == []
    assert not list(store.list("models/b-01/v")) and not list(store.list(seen["trained"].run_prefix))
    assert not Path(seen["trained"].export_dir).exists()


def test_revoking_training_consent_deletes_the_checkpoints_of_unfinished_trainings(tmp_path: Path) -> None:
    from tasks.consent.records import grant
    from tests.consent_factory import add_bearer

    store = open_storage(str(tmp_path / "archive"))
    cat = Catalog(store)
    add_bearer(cat, "b-01")
    grant(cat, store, bearer_id="b-01", grantor_type="self", grantor_id="b-01", scopes=["preserve", "model_training"])
    store.put("models/b-01/training/0123/checkpoint.pth", b"weights of a killed run")
    report = carry_out(cat, store, "b-01", ["model_training"], "withdrawn")
    assert not list(store.list("models/b-01/training/"))
    assert store.uri("models/b-01/training/0123/checkpoint.pth") in report.objects_deleted


def test_training_on_an_s3_archive_resumes_from_the_store_and_registers(
    s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import voice_models.training as training

    cat, store = voice_archive(s3_env + "/archive", {"b-01": "en-us+m3", "b-02": "en-us+f2"})
    train_base(cat, store, "tiny-base", replace(TINY, steps=3), work=tmp_path / "base")
    assert {o.key.rsplit("/", 1)[1] for o in store.list("models/base/tiny-base/")} == {"checkpoint.pth", "model.json"}
    assert not list(store.list("models/base-training/"))

    class Killed(Exception):
        pass

    upload = training._upload

    def upload_then_die(storage, path, key, *, new=False):
        upload(storage, path, key, new=new)
        raise Killed

    hp = replace(TINY, steps=4, checkpoint_every=2)
    monkeypatch.setattr(training, "_upload", upload_then_die)
    with pytest.raises(Killed):
        fine_tune(cat, store, "b-01", "tiny-base", hp, work=tmp_path / "a")
    monkeypatch.setattr(training, "_upload", upload)
    trained = fine_tune(cat, store, "b-01", "tiny-base", hp, work=tmp_path / "b")  # a fresh node: only the store
    assert (trained.training["resumed_from_step"], trained.training["steps"]) == (2, 4)
    row = register_trained(cat, store, trained)
    assert row.artifact_uri == f"{s3_env}/archive/models/b-01/v1/generator.pth"
    assert store.read_bytes("models/b-01/v1/dataset.json") and not list(store.list(trained.run_prefix))
