"""One interface for voice backends, and the registry that names them.

A backend trains a multi-speaker base model, fine-tunes it for one bearer (adding their speaker), exports
the generator alone as the versioned artefact, and synthesizes from phones; every backend is evaluated the
same way (:func:`voice_models.evaluation.evaluate_model`). Backends work on local folders; moving folders to
and from the archive's model store is the training module's job. Backends are found by entry point
(:func:`get_backend`), so nothing here imports one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from heirloom.errors import VoiceModelError
from voice_models.phones import Words


@dataclass(frozen=True)
class Utterance:
    """One training or held-out example: a speaker's audio and the phones aligned to it."""

    segment_id: str
    speaker: str
    text: str
    words: Words
    audio: np.ndarray = field(repr=False)
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass(frozen=True)
class Hyperparameters:
    """What a training run is asked to do; recorded on the model version as its hyper-parameters.

    ``steps`` and ``learning_rate`` None mean the backend's default for the preset (:meth:`VoiceBackend.resolve`);
    ``batch_size`` None means: from free GPU memory on a GPU, 4 on CPU. ``checkpoint_every`` steps the whole
    training state is saved, so a killed run resumes from there.
    """

    preset: str = "small"
    steps: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    freeze_encoder: bool = True
    max_utterance_s: float = 12.0
    checkpoint_every: int = 100
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> Hyperparameters:
        unknown = sorted(set(doc or {}) - set(cls.__dataclass_fields__))
        if unknown:
            raise VoiceModelError(
                f"unknown hyper-parameters {', '.join(unknown)}; known: {', '.join(cls.__dataclass_fields__)}"
            )
        return cls(**(doc or {}))


@dataclass(frozen=True)
class TrainResult:
    steps: int
    resumed_from_step: int
    seconds: float
    loss_first: float
    loss_last: float
    device: str
    batch_size: int
    utterances: int
    utterances_too_long: int
    audio_seconds: float


CheckpointHook = Callable[[Path], None]


class VoiceBackend(ABC):
    name: ClassVar[str]

    @abstractmethod
    def sample_rate(self, preset: str) -> int:
        """The audio rate a model of ``preset`` is trained and speaks at."""

    def resolve(self, hp: Hyperparameters) -> Hyperparameters:
        """``hp`` with the backend's defaults for what it leaves open (what a model version records)."""
        return hp

    def install_base(self, out_dir: Path) -> dict[str, Any]:
        """A pretrained base this backend ships (in its packages) written to ``out_dir``; its description."""
        raise VoiceModelError(f"the {self.name} backend ships no pretrained base; train one with `heirloom base train`")

    def coverage(self, words: Sequence[Words]) -> dict[str, Any] | None:
        """How much of these phones the backend can say (None: it learns any phone it is trained on)."""
        return None

    def base_weights(self, base_dir: Path) -> Path:
        """The file whose SHA-256 identifies a base in lineage."""
        return base_dir / "checkpoint.pth"

    @abstractmethod
    def train_base(
        self, utterances: Sequence[Utterance], out_dir: Path, hp: Hyperparameters, *, on_checkpoint: CheckpointHook
    ) -> TrainResult:
        """A multi-speaker base model from scratch, saved in ``out_dir`` (with what fine-tuning needs)."""

    @abstractmethod
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
        """Fine-tune the base in ``base_dir`` for ``speaker``; resumes from a checkpoint left in ``work_dir``."""

    @abstractmethod
    def export(self, work_dir: Path, out_dir: Path) -> list[Path]:
        """The generator alone (no discriminator, no optimiser state) of a finished run, as files in ``out_dir``."""

    @abstractmethod
    def speakers(self, model_dir: Path) -> list[str]:
        """The speakers an exported or base model can speak as."""

    @abstractmethod
    def synthesize(self, model_dir: Path, words: Words, speaker: str) -> tuple[np.ndarray, int]:
        """Mono float audio of ``words`` in ``speaker``'s voice, and its sample rate."""


BACKEND_GROUP = "heirloom.voice_backends"


def get_backend(name: str) -> VoiceBackend:
    """The backend registered as ``name`` in the ``heirloom.voice_backends`` entry-point group.

    Backends register in their package's metadata (heirloom's own in pyproject.toml), so this module
    imports none of them: the heavy ones (torch, coqui) load only when asked for, and a site's own backend
    needs no change here.
    """
    found = {ep.name: ep for ep in entry_points(group=BACKEND_GROUP)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is heirloom installed? run `bash dev.sh setup`)"
        raise VoiceModelError(f"no voice backend {name!r}; known: {known}")
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, VoiceBackend)):
        raise VoiceModelError(f"the {BACKEND_GROUP} entry point {name!r} names {cls!r}, which is not a VoiceBackend")
    return cls()
