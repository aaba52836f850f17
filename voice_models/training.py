"""Training a bearer's voice model end to end, between the archive's model store and a backend.

Store layout (``models/`` in the archive):
- ``base/<name>/``: a base checkpoint (with its discriminator, which fine-tuning needs) and ``model.json``
  (``base-training/<name>/`` holds its checkpoint while it trains);
- ``<bearer>/training/<run>/``: the checkpoint of a run in progress, ``<run>`` a hash of dataset, base and
  hyper-parameters, so the same request after a kill resumes where the last checkpoint left it;
- ``<bearer>/v<N>/``: the exported generator, ``model.json`` and ``MODEL_CARD.md`` of version N.

Consent is checked when the training set is built (nothing ineligible enters) and again by
:func:`consent_still_given` just before registration; the flow runs that check and the registration in one
Prefect transaction whose rollback deletes the weights.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from catalog.manifests import VoiceModelVersion
from catalog.storage import Storage, sha256_file, staged
from catalog.tables import Catalog, latest_derivatives
from heirloom.errors import ConsentError, VoiceModelError
from tasks.align import latest, words_of
from tasks.consent import DATASET_MANIFEST
from voice_models.backend import Hyperparameters, Utterance, VoiceBackend, get_backend
from voice_models.dataset import Dataset, Item, build_dataset, store_manifest
from voice_models.evaluation import RATE_HZ, Panel, embedding, evaluate_model, panel, split_held_out
from voice_models.phones import stressed
from voice_models.registry import register

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_TRAINING_SEGMENTS = 2


@dataclass(frozen=True)
class FineTuned:
    """A finished fine-tune, not yet registered: where its files are and what it measured."""

    bearer_id: str
    backend: str
    base_name: str
    base_sha256: str
    dataset_sha256: str
    trained_segments: tuple[str, ...]
    consent_ids: tuple[str, ...]
    hyperparameters: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any]
    export_dir: str
    run_prefix: str
    weights_file: str = ""
    listening: tuple[dict[str, str], ...] = ()


def base_prefix(name: str) -> str:
    if not _NAME.match(name):
        raise VoiceModelError(f"{name!r} is not a base model name; use lower-case letters, digits, '.', '_', '-'")
    return f"models/base/{name}/"


def _new_base_prefix(storage: Storage, name: str) -> str:
    """The store folder of a base that does not exist yet (base names are never reused)."""
    prefix = base_prefix(name)
    if any(True for _ in storage.list(prefix)):
        raise VoiceModelError(f"base model {name!r} exists ({storage.uri(prefix)}); choose another name")
    return prefix


def download_prefix(storage: Storage, prefix: str, into: Path) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    out = []
    for obj in storage.list(prefix):
        target = into / obj.key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        with storage.open_read(obj.key) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, length=8 << 20)
        out.append(target)
    return out


def _upload(storage: Storage, path: Path, key: str, *, new: bool = False) -> str:
    with open(path, "rb") as f:
        (storage.create if new else storage.put)(key, f)
    return storage.uri(key)


def load_utterances(
    catalog: Catalog, storage: Storage, items: Sequence[Item], speaker: str, rate: int
) -> list[Utterance]:
    """The audio of each item cut from its recording's newest working copy, at the model's rate, with its
    phones stressed as the recording's dialect stresses them."""
    working = latest_derivatives(catalog)
    dialects = {r["recording_id"]: r["dialect"] for r in catalog.read("recordings").to_pylist()}
    by_recording: dict[str, list[Item]] = {}
    for item in items:
        by_recording.setdefault(item.recording_id, []).append(item)
    out = []
    for rid, mine in by_recording.items():
        d = working.get(rid)
        if d is None:
            raise VoiceModelError(f"recording {rid} has no working copy; run `heirloom prepare --recording {rid}`")
        with staged(storage, storage.key_of(d["uri"])) as path:
            sr = sf.info(str(path)).samplerate
            for item in mine:
                x, _ = sf.read(
                    str(path), start=int(item.start_s * sr), stop=int(item.end_s * sr), dtype="float32", always_2d=True
                )
                audio = soxr.resample(x.mean(axis=1), sr, rate).astype(np.float32) if sr != rate else x.mean(axis=1)
                words = stressed(words_of(item.text), item.words, dialects[rid]) if dialects.get(rid) else item.words
                out.append(Utterance(item.segment_id, speaker, item.text, words, audio, rate))
    return out


def _hyperparameters(hp: Hyperparameters) -> str:
    return json.dumps(hp.to_dict(), sort_keys=True)


def train_base(
    catalog: Catalog, storage: Storage, name: str, hp: Hyperparameters, *, backend: str = "vits", work: Path
) -> dict[str, Any]:
    """A base model on every bearer's eligible segments (the consent rules of a bearer's own training set)."""
    prefix = _new_base_prefix(storage, name)
    impl = get_backend(backend)
    hp = impl.resolve(hp)
    rate = impl.sample_rate(hp.preset)
    utterances, speakers, manifests = [], [], {}
    for bearer in sorted(r["bearer_id"] for r in catalog.read("bearers").to_pylist()):
        ds = build_dataset(catalog, bearer)
        if ds.items:
            utterances += load_utterances(catalog, storage, ds.items, bearer, rate)
            speakers.append(bearer)
            manifests[bearer] = store_manifest(storage, ds)["sha256"]
    if not speakers:
        raise VoiceModelError(
            "no bearer has segments eligible for training (consent, quality gate, alignment flags); prepare and "
            "align more recordings, or place a base model in the store"
        )
    out = work / "base"
    run_prefix = f"models/base-training/{name}/"
    download_prefix(storage, run_prefix, out)
    result = impl.train_base(
        utterances, out, hp, on_checkpoint=lambda path: _upload(storage, path, run_prefix + path.name)
    )
    for path in sorted(out.iterdir()):
        _upload(storage, path, prefix + path.name, new=True)
    for obj in list(storage.list(run_prefix)):
        storage.delete(obj.key)
    return {
        "base": name,
        "uri": storage.uri(prefix),
        "sha256": sha256_file(impl.base_weights(out)),
        "speakers": speakers,
        "dataset_manifests": manifests,
        "training": asdict(result),
        "hyperparameters": hp.to_dict(),
    }


def install_base(storage: Storage, name: str, *, backend: str, work: Path) -> dict[str, Any]:
    """The pretrained base a backend ships, written to ``models/base/<name>/`` (once: names are never reused)."""
    prefix = _new_base_prefix(storage, name)
    impl = get_backend(backend)
    out = work / "base"
    described = impl.install_base(out)
    for path in sorted(out.iterdir()):
        _upload(storage, path, prefix + path.name, new=True)
    return {
        "base": name,
        "backend": backend,
        "uri": storage.uri(prefix),
        "sha256": sha256_file(impl.base_weights(out)),
        **described,
        "coverage": dialect_coverage(storage, impl),
    }


def dialect_coverage(storage: Storage, impl: VoiceBackend) -> dict[str, Any]:
    """Per dialect lexicon in the archive, how much of its phones (every entry's first pronunciation) the
    backend can say; empty for a backend that learns any phone."""
    out = {}
    for dialect in sorted({o.key.split("/")[1] for o in storage.list("lexicons/") if o.key.count("/") >= 2}):
        lexicon = latest(storage, dialect)
        if lexicon is not None and lexicon.entries:
            found = impl.coverage([tuple(prons[0] for prons in lexicon.entries.values())])
            if found is not None:
                out[dialect] = found
    return out


def _base(impl: VoiceBackend, storage: Storage, name: str, into: Path) -> tuple[Path, str]:
    prefix = base_prefix(name)
    if not download_prefix(storage, prefix, into):
        raise VoiceModelError(
            f"no base model {name!r} in {storage.uri(prefix)}; install one (`heirloom base install {name} --backend "
            f"kokoro`), place one there or train one (`heirloom base train {name}`)"
        )
    return into, sha256_file(impl.base_weights(into))


def fine_tune(
    catalog: Catalog,
    storage: Storage,
    bearer_id: str,
    base_name: str,
    hp: Hyperparameters,
    *,
    work: Path,
    backend: str = "vits",
    dataset: Dataset | None = None,
) -> FineTuned:
    """Fine-tune ``base_name`` on the bearer's training set and evaluate it and the base on held-out segments."""
    dataset = dataset or build_dataset(catalog, bearer_id)
    if len(dataset.items) < MIN_TRAINING_SEGMENTS:
        reasons = sorted({left.reason for left in dataset.left_out})
        raise VoiceModelError(
            f"bearer {bearer_id} has {len(dataset.items)} eligible segments (at least {MIN_TRAINING_SEGMENTS} "
            f"needed); left out: {'; '.join(reasons) or 'no aligned segments'}"
        )
    impl = get_backend(backend)
    hp = impl.resolve(hp)
    rate = impl.sample_rate(hp.preset)
    manifest = store_manifest(storage, dataset)
    base_dir, base_sha = _base(impl, storage, base_name, work / "base")
    train_ids, held_ids = split_held_out([i.segment_id for i in dataset.items])
    utterances = load_utterances(catalog, storage, dataset.items, bearer_id, rate)
    train = [u for u in utterances if u.segment_id in train_ids]
    held = [u for u in utterances if u.segment_id in held_ids]
    run = hashlib.sha256(f"{dataset.sha256}|{base_sha}|{_hyperparameters(hp)}|{backend}".encode()).hexdigest()[:16]
    run_prefix = f"models/{bearer_id}/training/{run}/"
    run_dir = work / "run"
    download_prefix(storage, run_prefix, run_dir)
    result = impl.fine_tune(
        base_dir,
        bearer_id,
        train,
        run_dir,
        hp,
        on_checkpoint=lambda path: _upload(storage, path, run_prefix + path.name),
    )
    export_dir = work / "export"
    weights = impl.export(run_dir, export_dir)[0]
    (export_dir / DATASET_MANIFEST).write_bytes(dataset.manifest())  # beside the weights, where audits look
    others = _other_voices(catalog, storage, bearer_id, rate)
    language = _language(catalog, bearer_id)
    said: dict[str, np.ndarray] = {}
    said_by_base: dict[str, np.ndarray] = {}
    judging = panel(held, others, train)
    metrics = evaluate_model(
        impl, export_dir, bearer_id, held, others, language=language, keep_audio=said, against=judging
    )
    metrics["baseline"] = _baseline(impl, base_dir, held, others, language, judging, said_by_base)
    listening = _listening_set(export_dir, held, said, said_by_base)
    adaptation = json.loads((export_dir / "model.json").read_text()).get("fit")
    return FineTuned(
        bearer_id=bearer_id,
        backend=backend,
        base_name=base_name,
        base_sha256=base_sha,
        dataset_sha256=manifest["sha256"],
        trained_segments=tuple(sorted(train_ids)),
        consent_ids=dataset.consent_ids,
        hyperparameters=hp.to_dict(),
        training={**asdict(result), "held_out_segments": sorted(held_ids), "adaptation": adaptation},
        metrics=metrics,
        export_dir=str(export_dir),
        run_prefix=run_prefix,
        weights_file=weights.name,
        listening=listening,
    )


LISTENING_SET = 3


def _listening_set(
    export_dir: Path, held: Sequence[Utterance], model: dict[str, np.ndarray], base: dict[str, np.ndarray]
) -> tuple[dict[str, str], ...]:
    """The same held-out texts from the bearer, the base and the new voice, as FLAC files beside the weights,
    so a curator hears what changed (they are the bearer's voice: revocation deletes them with the version)."""
    rows = []
    for n, u in enumerate(held[:LISTENING_SET], start=1):
        if u.segment_id not in model:
            continue
        row = {"segment_id": u.segment_id, "text": u.text}
        for who, audio in (("bearer", u.audio), ("base", base.get(u.segment_id)), ("model", model[u.segment_id])):
            if audio is None:
                continue
            rate = u.sample_rate if who == "bearer" else RATE_HZ
            name = f"listening-{n}-{who}.flac"
            sf.write(str(export_dir / name), np.clip(audio, -1, 1), rate, subtype="PCM_16")
            row[who] = name
        rows.append(row)
    return tuple(rows)


def _language(catalog: Catalog, bearer_id: str) -> str | None:
    langs = [r["language"] for r in catalog.read("recordings").to_pylist() if r["bearer_id"] == bearer_id]
    return max(set(langs), key=langs.count) if langs else None


def _other_voices(
    catalog: Catalog, storage: Storage, bearer_id: str, rate: int, per_bearer: int = 5
) -> list[Utterance]:
    """A few eligible segments of every other bearer: the voices a model must not be taken for."""
    out = []
    for other in sorted(r["bearer_id"] for r in catalog.read("bearers").to_pylist() if r["bearer_id"] != bearer_id):
        items = build_dataset(catalog, other).items[:per_bearer]
        out += load_utterances(catalog, storage, items, other, rate) if items else []
    return out


def _baseline(
    impl: VoiceBackend,
    base_dir: Path,
    held: Sequence[Utterance],
    others: Sequence[Utterance],
    language: str | None,
    judging: Panel,
    keep_audio: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The base model's metrics as its closest voice to the bearer (by one held-out text): what fine-tuning has
    to beat."""
    speakers = impl.speakers(base_dir)
    scored = []
    if judging.bearer is not None and held:
        for s in speakers:
            audio, rate = impl.synthesize(base_dir, held[0].words, s)
            if (v := embedding(audio, rate)) is not None:
                scored.append((float(v @ judging.bearer), s))
    speaker = max(scored)[1] if scored else speakers[0]
    metrics = evaluate_model(
        impl, base_dir, speaker, held, others, language=language, keep_audio=keep_audio, against=judging
    )
    return {"speaker": speaker, **metrics}


def consent_still_given(catalog: Catalog, trained: FineTuned) -> None:
    """Raise ConsentError when a segment the model learnt from is no longer allowed to train a model."""
    now = build_dataset(catalog, trained.bearer_id)
    allowed = {i.segment_id for i in now.items}
    gone = [s for s in trained.trained_segments if s not in allowed]
    if gone:
        why = sorted({left.reason for left in now.left_out if left.segment_id in set(gone)})
        raise ConsentError(
            trained.bearer_id,
            f"{len(gone)} of the {len(trained.trained_segments)} training segments may no longer train a model "
            f"({'; '.join(why)}); the weights are deleted and nothing is registered",
        )


def discard(storage: Storage, trained: FineTuned) -> list[str]:
    """Delete a run's weights: its checkpoints in the store and its local export."""
    deleted = []
    for obj in list(storage.list(trained.run_prefix)):
        storage.delete(obj.key)
        deleted.append(storage.uri(obj.key))
    shutil.rmtree(trained.export_dir, ignore_errors=True)
    return deleted


def model_card(row: VoiceModelVersion, trained: FineTuned) -> str:
    m, base = trained.metrics, trained.metrics.get("baseline", {})
    t = trained.training

    def line(key: str, label: str) -> str:
        return f"| {label} | {m.get(key)} | {base.get(key)} |"

    return "\n".join(
        [
            f"# Voice model {row.model_id}",
            "",
            f"Bearer `{row.bearer_id}`, version {row.version}, backend `{row.backend}`, status at registration: "
            f"{row.status}. It may be used only as the consent records `{row.consent_id}` allow, and is revoked "
            "with them.",
            "",
            "## Lineage",
            f"- base model `{row.base_model}` (SHA-256 `{row.base_model_sha256}`)",
            f"- training set: {len(trained.trained_segments)} segments, {t['audio_seconds']:.1f} s "
            f"(manifest SHA-256 `{row.dataset_manifest_sha256}`); {len(t['held_out_segments'])} held out",
            f"- artefact `{row.artifact_uri}` (SHA-256 `{row.artifact_sha256}`), generator only",
            f"- hyper-parameters: `{json.dumps(trained.hyperparameters, sort_keys=True)}`",
            f"- training: {t['steps']} steps on {t['device']} (batch {t['batch_size']}) in {t['seconds']:.0f} s, "
            f"loss {t['loss_first']:.2f} -> {t['loss_last']:.2f}",
            "",
            "## Evaluation on held-out segments",
            "| metric | this model | base model |",
            "|---|---|---|",
            line("similarity_to_bearer", "speaker similarity to the bearer"),
            line("similarity_to_others", "speaker similarity to other bearers"),
            line("wer", f"word error rate ({m.get('asr')})"),
            f"| second judge (speaker-ID over MFCCs): clips ranked as the bearer | {_ranked(m)} | {_ranked(base)} |",
            line("pitch_median_hz", f"median pitch, Hz (bearer {m.get('bearer_pitch_median_hz')})"),
            line("pitch_range_semitones", f"pitch range, semitones (bearer {m.get('bearer_pitch_range_semitones')})"),
            line("dnsmos_ovrl", "DNSMOS OVRL"),
            "",
            *(
                ["## Adaptation", f"`{json.dumps(t['adaptation'], sort_keys=True, default=str)}`", ""]
                if t.get("adaptation")
                else []
            ),
            "## Listening set",
            "The same held-out texts, never trained on, from the bearer's recording, the base model's closest voice "
            f"(`{base.get('speaker')}`) and this model (files beside this card):",
            "",
            "| text | bearer | base | this model |",
            "|---|---|---|---|",
            *(
                f"| {r['text']} | [{r.get('bearer', '')}]({r.get('bearer', '')}) | [{r.get('base', '')}]"
                f"({r.get('base', '')}) | [{r['model']}]({r['model']}) |"
                for r in trained.listening
            ),
            "",
            "A candidate becomes active only through `heirloom models promote`, which applies the promotion gate "
            "(voice_models/registry.py).",
            "",
        ]
    )


def _ranked(m: dict[str, Any]) -> str:
    if m.get("speaker_id_first") is None:
        return "n/a (no other bearers)"
    return f"{m['speaker_id_first']} of {m['speaker_id_clips']}"


def register_trained(catalog: Catalog, storage: Storage, trained: FineTuned) -> VoiceModelVersion:
    """Place the export under ``models/<bearer>/v<N>/`` and insert version N (the next free one)."""
    export = Path(trained.export_dir)
    candidate = VoiceModelVersion(
        model_id="",
        bearer_id=trained.bearer_id,
        version=0,
        backend=trained.backend,
        dataset_manifest_sha256=trained.dataset_sha256,
        consent_id=",".join(trained.consent_ids),
        artifact_uri="",
        artifact_sha256="",
        base_model=trained.base_name,
        base_model_sha256=trained.base_sha256,
        hyperparameters=json.dumps(trained.hyperparameters, sort_keys=True),
        metrics=json.dumps(trained.metrics, sort_keys=True),
    )

    def place(row: VoiceModelVersion) -> VoiceModelVersion:
        prefix = f"models/{row.bearer_id}/v{row.version}/"
        files = sorted(p for p in export.iterdir() if p.is_file())
        weights = next(p for p in files if p.name == trained.weights_file) if trained.weights_file else None
        weights = weights or max(files, key=lambda p: p.stat().st_size)
        uris = {p.name: _upload(storage, p, prefix + p.name, new=True) for p in files}
        row = replace(row, artifact_uri=uris[weights.name], artifact_sha256=sha256_file(weights))
        card = storage.create(prefix + "MODEL_CARD.md", model_card(row, trained).encode())
        return replace(row, model_card_uri=storage.uri(card.key))

    row = register(catalog, candidate, place=place)
    for obj in list(storage.list(trained.run_prefix)):
        storage.delete(obj.key)
    return row
