"""The built-in voice backend: coqui-tts VITS on phones of the shared IPA set, one speaker row per bearer.

The training loop is ours, around coqui's model, losses and optimisers (``Vits.train_step``): coqui's Trainer
counts epochs, writes its own logs and feeds its own text pipeline, where this project needs a step budget,
phone input, and a checkpoint in the archive's model store from which a killed run resumes.

On a GPU: bfloat16 autocast (no loss scaler needed) and a batch size from free GPU memory. Presets size the
network: ``tiny`` trains in seconds on a CPU (tests, demo), ``small`` is for CPU benchmarks, ``standard`` is
coqui's published VITS for GPU nodes.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heirloom.errors import VoiceModelError
from voice_models.backend import CheckpointHook, Hyperparameters, TrainResult, Utterance, VoiceBackend
from voice_models.phones import BLANK, CHARACTERS, PAD, VOCABULARY, Words, encode

log = logging.getLogger(__name__)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "sample_rate": 16000,
        "args": dict(
            hidden_channels=48,
            hidden_channels_ffn_text_encoder=96,
            num_layers_text_encoder=2,
            num_layers_posterior_encoder=4,
            num_layers_flow=2,
            use_sdp=False,
            upsample_initial_channel_decoder=64,
            upsample_rates_decoder=[8, 8, 4],
            upsample_kernel_sizes_decoder=[16, 16, 8],
            resblock_kernel_sizes_decoder=[3],
            resblock_dilation_sizes_decoder=[[1, 3, 5]],
            speaker_embedding_channels=32,
            spec_segment_size=16,
            periods_multi_period_discriminator=[2, 3],
        ),
    },
    "small": {
        "sample_rate": 22050,
        "args": dict(
            hidden_channels=96,
            hidden_channels_ffn_text_encoder=384,
            num_layers_text_encoder=4,
            num_layers_posterior_encoder=8,
            num_layers_flow=4,
            upsample_initial_channel_decoder=256,
            upsample_rates_decoder=[8, 8, 2, 2],
            upsample_kernel_sizes_decoder=[16, 16, 4, 4],
            resblock_kernel_sizes_decoder=[3, 7],
            resblock_dilation_sizes_decoder=[[1, 3, 5], [1, 3, 5]],
            speaker_embedding_channels=128,
        ),
    },
    "standard": {"sample_rate": 22050, "args": dict(speaker_embedding_channels=256)},
}
MODEL_JSON = "model.json"
CHECKPOINT = "checkpoint.pth"
GENERATOR = "generator.pth"
# Free GPU memory is shared out at an assumed 2.5 GB per item (the standard preset, 12 s utterances, bfloat16):
# an estimate, not measured here, as no GPU was lent while this was written; --batch-size overrides it.
_GPU_BYTES_PER_ITEM = 2.5e9
_GPU_BATCH_RANGE = (4, 48)
_CPU_BATCH = 4
_TRIM_FRACTION = 0.1


def _config(preset: str, speakers: Sequence[str], *, discriminator: bool):
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig

    if preset not in PRESETS:
        raise VoiceModelError(f"no VITS preset {preset!r}; use one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    characters = CharactersConfig(
        characters_class="TTS.tts.utils.text.characters.Graphemes",
        pad=PAD,
        blank=BLANK,
        eos=None,
        bos=None,
        characters=CHARACTERS,
        punctuations="",
        is_unique=False,
        is_sorted=False,
    )
    audio = BaseAudioConfig(
        sample_rate=p["sample_rate"], fft_size=1024, win_length=1024, hop_length=256, num_mels=80, mel_fmin=0
    )
    args = VitsArgs(use_speaker_embedding=True, init_discriminator=discriminator, **p["args"])
    return VitsConfig(
        model_args=args,
        audio=audio,
        speakers=list(speakers),
        characters=characters,
        use_phonemes=False,
        text_cleaner=None,
        add_blank=True,
    )


def _build(preset: str, speakers: Sequence[str], *, discriminator: bool = True):
    from TTS.tts.models.vits import Vits

    model = Vits(_config(preset, speakers, discriminator=discriminator))
    if model.args.num_chars != len(CHARACTERS) + 2:
        raise VoiceModelError(f"coqui-tts built {model.args.num_chars} input symbols, not {len(CHARACTERS) + 2}")
    return model


def _read_model_json(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MODEL_JSON
    if not path.exists():
        raise VoiceModelError(f"{model_dir} holds no {MODEL_JSON}; it is not a model folder of the vits backend")
    doc = json.loads(path.read_text())
    if doc.get("vocabulary") != list(VOCABULARY):
        raise VoiceModelError(f"{model_dir} was trained on another phone vocabulary; train it again")
    return doc


def _write_model_json(model_dir: Path, preset: str, speakers: Sequence[str], **extra: Any) -> None:
    doc = {"backend": "vits", "preset": preset, "speakers": list(speakers), "vocabulary": list(VOCABULARY), **extra}
    (model_dir / MODEL_JSON).write_text(json.dumps(doc, ensure_ascii=False, indent=1))


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _batch_size(hp: Hyperparameters, device: torch.device) -> int:
    if hp.batch_size:
        return hp.batch_size
    if device.type != "cuda":
        return _CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    lo, hi = _GPU_BATCH_RANGE
    return int(min(hi, max(lo, free // _GPU_BYTES_PER_ITEM)))


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _examples(model, utterances: Sequence[Utterance], speakers: Sequence[str], hp: Hyperparameters):
    rate = model.config.audio.sample_rate
    ids = {s: i for i, s in enumerate(speakers)}
    kept, too_long = [], 0
    for u in utterances:
        if u.sample_rate != rate:
            raise VoiceModelError(f"segment {u.segment_id} is at {u.sample_rate} Hz; the model needs {rate} Hz")
        if u.seconds > hp.max_utterance_s:
            too_long += 1
            continue
        tokens = model.tokenizer.text_to_ids(encode(u.words))
        kept.append((torch.tensor(tokens), torch.from_numpy(np.asarray(u.audio, dtype=np.float32)), ids[u.speaker]))
    if not kept:
        raise VoiceModelError(
            f"no utterance of at most {hp.max_utterance_s:g} s to train on ({too_long} longer); align more material"
        )
    return kept, too_long


def _collate(items, device: torch.device) -> dict[str, Any]:
    tokens = torch.nn.utils.rnn.pad_sequence([t for t, _, _ in items], batch_first=True)
    lengths = torch.tensor([len(w) for _, w, _ in items])
    waves = torch.zeros(len(items), 1, int(lengths.max()))
    for i, (_, w, _) in enumerate(items):
        waves[i, 0, : len(w)] = w
    return {
        "tokens": tokens.to(device),
        "token_lens": torch.tensor([len(t) for t, _, _ in items], device=device),
        "waveform": waves.to(device),
        "waveform_rel_lens": (lengths / lengths.max()).to(device),
        "speaker_ids": torch.tensor([s for _, _, s in items], device=device),
        "d_vectors": None,
        "language_ids": None,
    }


def _train(
    model,
    speakers: Sequence[str],
    utterances: Sequence[Utterance],
    hp: Hyperparameters,
    work_dir: Path,
    on_checkpoint: CheckpointHook,
) -> TrainResult:
    started = time.monotonic()
    device = _device()
    examples, too_long = _examples(model, utterances, speakers, hp)
    model.config.lr_gen = model.config.lr_disc = hp.learning_rate
    model.args.freeze_encoder = hp.freeze_encoder
    model._freeze_layers()  # coqui calls it from its Trainer's epoch hook; this loop has no epochs
    model.to(device).train()
    criteria = model.get_criterion()
    optimizers = model.get_optimizer()
    batch = min(_batch_size(hp, device), len(examples))
    rng = random.Random(hp.seed)
    torch.manual_seed(hp.seed)
    step, losses = 0, []
    checkpoint = work_dir / CHECKPOINT
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state.get("speakers") != list(speakers):
            raise VoiceModelError(
                f"the checkpoint {checkpoint} was made for speakers {state.get('speakers')}, not {list(speakers)}; "
                "delete it (or the run's folder in the model store) to start this training over"
            )
        model.load_state_dict(state["model"])
        for opt, opt_state in zip(optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        step, losses = state["step"], state["losses"]
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it with the weights
    resumed_from = step
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    while step < hp.steps:
        data = model.format_batch_on_device(_collate(rng.sample(examples, batch), device))
        for index in (0, 1):  # the discriminator, then the generator, as coqui's Trainer orders them
            with autocast:
                _, loss = model.train_step(data, criteria[index], index)
            optimizers[index].zero_grad(set_to_none=True)
            loss["loss"].backward()
            params = [p for g in optimizers[index].param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, 1000.0)  # coqui's VITS recipe clips both networks at 1000
            optimizers[index].step()
        losses.append(float((loss["loss_mel"] + loss["loss_kl"] + loss["loss_duration"]).detach()))
        step += 1
        if step % hp.checkpoint_every == 0 or step == hp.steps:
            state = {
                "model": model.state_dict(),
                "optimizers": [o.state_dict() for o in optimizers],
                "step": step,
                "losses": losses,
                "python_rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "speakers": list(speakers),
            }
            _atomic_save(state, checkpoint)
            on_checkpoint(checkpoint)
    n = max(1, int(len(losses) * _TRIM_FRACTION))
    return TrainResult(
        steps=step,
        resumed_from_step=resumed_from,
        seconds=time.monotonic() - started,
        loss_first=float(np.mean(losses[:n])),
        loss_last=float(np.mean(losses[-n:])),
        device=device.type,
        batch_size=batch,
        utterances=len(examples),
        utterances_too_long=too_long,
        audio_seconds=float(sum(len(w) for _, w, _ in examples) / model.config.audio.sample_rate),
    )


DEFAULT_STEPS = 2000
DEFAULT_LEARNING_RATE = 2e-4


class VitsBackend(VoiceBackend):
    name = "vits"

    def __init__(self) -> None:
        self._loaded: dict[tuple[Path, float], Any] = {}

    def sample_rate(self, preset: str) -> int:
        if preset not in PRESETS:
            raise VoiceModelError(f"no VITS preset {preset!r}; use one of {', '.join(PRESETS)}")
        return int(PRESETS[preset]["sample_rate"])

    def resolve(self, hp: Hyperparameters) -> Hyperparameters:
        return replace(hp, steps=hp.steps or DEFAULT_STEPS, learning_rate=hp.learning_rate or DEFAULT_LEARNING_RATE)

    def train_base(
        self, utterances: Sequence[Utterance], out_dir: Path, hp: Hyperparameters, *, on_checkpoint: CheckpointHook
    ) -> TrainResult:
        hp = self.resolve(hp)
        speakers = sorted({u.speaker for u in utterances})
        out_dir.mkdir(parents=True, exist_ok=True)
        model = _build(hp.preset, speakers)
        result = _train(model, speakers, utterances, hp, out_dir, on_checkpoint)
        _write_model_json(out_dir, hp.preset, speakers, kind="base")
        return result

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
        hp = self.resolve(hp)
        base = _read_model_json(base_dir)
        if base["preset"] != hp.preset:
            raise VoiceModelError(f"the base model in {base_dir} is preset {base['preset']!r}, not {hp.preset!r}")
        speakers = [*base["speakers"], speaker] if speaker not in base["speakers"] else list(base["speakers"])
        work_dir.mkdir(parents=True, exist_ok=True)
        model = _build(hp.preset, speakers)
        if not (work_dir / CHECKPOINT).exists():
            self._load_base(model, base_dir / CHECKPOINT, added=len(speakers) - len(base["speakers"]))
        result = _train(model, speakers, utterances, hp, work_dir, on_checkpoint)
        _write_model_json(work_dir, hp.preset, speakers, kind="fine-tune", speaker=speaker)
        return result

    @staticmethod
    def _load_base(model, checkpoint: Path, *, added: int) -> None:
        if not checkpoint.exists():
            raise VoiceModelError(f"the base model has no {checkpoint.name}; it cannot be fine-tuned")
        # coqui's load_checkpoint appends the new speaker's row (random); the mean of the base's voices is a
        # closer start than a random point the decoder has never been conditioned on
        model.load_checkpoint(model.config, str(checkpoint), strict=True)
        if added:
            with torch.no_grad():
                rows = model.emb_g.weight
                rows[-added:] = rows[:-added].mean(dim=0, keepdim=True)

    def export(self, work_dir: Path, out_dir: Path) -> list[Path]:
        doc = _read_model_json(work_dir)
        state = torch.load(work_dir / CHECKPOINT, map_location="cpu", weights_only=False)["model"]
        out_dir.mkdir(parents=True, exist_ok=True)
        generator = {k: v for k, v in state.items() if not k.startswith("disc.")}
        _atomic_save(generator, out_dir / GENERATOR)
        _write_model_json(out_dir, doc["preset"], doc["speakers"], kind="generator", speaker=doc.get("speaker"))
        return [out_dir / GENERATOR, out_dir / MODEL_JSON]

    def speakers(self, model_dir: Path) -> list[str]:
        return list(_read_model_json(model_dir)["speakers"])

    def load(self, model_dir: Path):
        """The generator of an exported model (or a base's checkpoint), ready for inference on this machine."""
        doc = _read_model_json(model_dir)
        model = _build(doc["preset"], doc["speakers"], discriminator=False)
        if (model_dir / GENERATOR).exists():
            state = torch.load(model_dir / GENERATOR, map_location="cpu", weights_only=True)
        else:
            full = torch.load(model_dir / CHECKPOINT, map_location="cpu", weights_only=False)["model"]
            state = {k: v for k, v in full.items() if not k.startswith("disc.")}
        model.load_state_dict(state, strict=True)
        return model.to(_device()).eval()

    def synthesize(self, model_dir: Path, words: Words, speaker: str) -> tuple[np.ndarray, int]:
        key = (model_dir.resolve(), (model_dir / MODEL_JSON).stat().st_mtime if model_dir.exists() else 0.0)
        if key not in self._loaded:
            self._loaded[key] = self.load(model_dir)
        model = self._loaded[key]
        speakers = list(model.config.speakers)
        if speaker not in speakers:
            raise VoiceModelError(f"the model in {model_dir} has no speaker {speaker!r}")
        device = next(model.parameters()).device
        tokens = torch.tensor([model.tokenizer.text_to_ids(encode(words))], device=device)
        aux = {"speaker_ids": torch.tensor([speakers.index(speaker)], device=device), "x_lengths": None}
        out = model.inference(tokens, aux_input=aux)["model_outputs"]
        return out[0, 0].float().cpu().numpy(), int(model.config.audio.sample_rate)
