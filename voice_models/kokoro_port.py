"""Kokoro's int8 ONNX weights as a PyTorch ``KModel`` state: the differentiable model that adaptation needs.

No tool converts a quantized ONNX graph back into a PyTorch module's parameters, so this does it, by reading
the graph rather than guessing from names:
- every weight is found through the node that consumes it; the node's scope (``/encoder/text_encoder/cnn.0/
  cnn.0.0/Conv_quant``) names the module, matched to the one PyTorch module whose dotted name ends with it and
  whose parameter has the same number of values;
- int8 weights are dequantized, ``(q - zero_point) * scale`` (per tensor, per output channel or per LSTM
  direction); MatMul weights are ``[in, out]`` where ``nn.Linear`` holds ``[out, in]``;
- the export folded weight norm (``g * v / |v|``) into plain weights: ``v`` is the weight and ``g`` its norm
  over every axis but the first, which gives back the same weight;
- onnxruntime's quantized LSTM holds ``W`` as ``[direction, input, 4 * hidden]`` with the gates in ONNX's
  order (input, output, forget, cell); PyTorch wants ``[4 * hidden, input]`` in (input, forget, cell, output).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heirloom.errors import VoiceModelError

_TOP = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")


@dataclass(frozen=True)
class Port:
    state: dict[str, dict[str, object]]  # KModel submodule -> its state dict (torch tensors)
    filled: int
    total: int
    unfilled: tuple[str, ...]


def _arrays(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in graph.initializer}


def _scope(node_name: str) -> str:
    """``/decoder/decoder/generator/ups.0/ConvTranspose`` -> ``generator.ups.0`` (the export's wrappers dropped)."""
    parts = [p for p in node_name.split("/") if p][:-1]
    while parts and parts[0] in ("encoder", "decoder"):
        parts = parts[1:]
    collapsed: list[str] = []
    for part in parts:  # a Sequential's child is scoped by its full name: `cnn.0/cnn.0.0` is `cnn.0.0`
        if collapsed and part.startswith(collapsed[-1] + "."):
            collapsed[-1] = part
        else:
            collapsed.append(part)
    return ".".join(collapsed)


def _weight(arrays: dict[str, np.ndarray], name: str, zero_point: str | None, channel_axis: int) -> np.ndarray:
    """A float weight; a quantized one dequantized with the zero point its node uses (they are shared by value)."""
    if not name.endswith("_quantized"):
        return arrays[name].astype(np.float32)
    q = arrays[name].astype(np.float32)
    scale = arrays[name[: -len("_quantized")] + "_scale"].astype(np.float32)
    zero = arrays[zero_point].astype(np.float32) if zero_point in arrays else np.zeros_like(scale)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[channel_axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (q - zero) * scale


def _lstm_gates(w: np.ndarray) -> np.ndarray:
    """ONNX's (i, o, f, c) blocks along the first axis to PyTorch's (i, f, c, o)."""
    i, o, f, c = np.split(w, 4, axis=0)
    return np.concatenate([i, f, c, o], axis=0)


def _by_scope(graph, arrays: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """scope -> {'weight' | 'bias' | LSTM names: array}, from the nodes that consume initializers."""
    found: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    dequantizers = {n.input[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    for node in graph.node:
        ins = list(node.input) + [""] * 12
        op = node.op_type
        scope = _scope(node.name)
        if op in ("ConvInteger", "Conv", "ConvTranspose") and ins[1] in arrays:
            found[scope].setdefault("weight", _weight(arrays, ins[1], ins[3] if op == "ConvInteger" else None, 0))
        elif op in ("MatMulInteger", "MatMul") and ins[1] in arrays:
            found[scope].setdefault("weight", _weight(arrays, ins[1], ins[3] if op == "MatMulInteger" else None, 1).T)
        elif op == "Gather" and ins[0].endswith("_quantized") and ins[0] in arrays:
            dq = dequantizers.get(node.output[0])
            found[scope]["weight"] = _weight(arrays, ins[0], dq.input[2] if dq is not None else None, 0)
        elif op == "DynamicQuantizeLSTM":
            w = _weight(arrays, ins[1], ins[9], 0)
            r = _weight(arrays, ins[2], ins[11], 0)
            b = arrays[ins[3]].astype(np.float32)
            hidden = r.shape[1]
            for d, suffix in enumerate(("", "_reverse")):
                found[scope][f"weight_ih_l0{suffix}"] = _lstm_gates(w[d].T)
                found[scope][f"weight_hh_l0{suffix}"] = _lstm_gates(r[d].T)
                found[scope][f"bias_ih_l0{suffix}"] = _lstm_gates(b[d, : 4 * hidden])
                found[scope][f"bias_hh_l0{suffix}"] = _lstm_gates(b[d, 4 * hidden :])
    return found


def _named(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float initializers that kept their PyTorch names (biases, norms, AdaIN alphas), under KModel's names."""
    out = {}
    for name, value in arrays.items():
        if name.endswith(("_quantized", "_scale", "_zero_point", "_shape")) or "/" in name or "::" in name:
            continue
        for prefix in ("encoder.", "decoder."):
            if name.startswith(prefix):
                out[name[len(prefix) :]] = value.astype(np.float32)
    return out


def convert(onnx_path: Path) -> Port:
    """The KModel state held by the ONNX file at ``onnx_path`` (weights as ``torch.float32`` tensors)."""
    import onnx
    import torch

    from voice_models.kokoro_base import new_model

    graph = onnx.load(str(onnx_path)).graph
    arrays = _arrays(graph)
    scoped = _by_scope(graph, arrays)
    named = _named(arrays)
    model = new_model()
    target = {k: v for k, v in model.state_dict().items()}
    modules = sorted({k.rsplit(".", 1)[0] for k in target})
    values: dict[str, np.ndarray] = {}
    for scope, params in scoped.items():
        for pname, value in params.items():
            exact = [m for m in modules if m == scope]
            candidates = exact or [m for m in modules if m.endswith("." + scope)]
            matches = [
                key
                for m in candidates
                for key in (f"{m}.{pname}", f"{m}.{pname}_v")
                if key in target and target[key].numel() == value.size
            ]
            if len(matches) == 1:
                values[matches[0]] = value
    for key, value in named.items():
        for k in (key, key.replace(".weight", ".weight_v")):
            if k in target and k not in values and target[k].numel() == value.size:
                values[k] = value
    for key in [k for k in values if k.endswith(".weight_v")]:
        v = values[key].reshape(target[key].shape)
        g = np.sqrt((v.reshape(v.shape[0], -1) ** 2).sum(axis=1))
        dead = g == 0  # rows quantized to zero: g = 0 with any nonzero v gives them back
        if dead.any():
            v = v.copy()
            v[dead] = 1.0
        values[key], values[key[:-1] + "g"] = v, g
    state = {}
    for key, tensor in target.items():
        source = values.get(key)
        if source is None:
            continue
        if source.size != tensor.numel():
            raise VoiceModelError(f"the ONNX weight for {key} has {source.size} values, the model {tensor.numel()}")
        state[key] = torch.from_numpy(np.ascontiguousarray(source.reshape(tensor.shape))).to(tensor.dtype)
    unfilled = tuple(sorted(k for k in target if k not in state))
    split: dict[str, dict[str, object]] = {top: {} for top in _TOP}
    for key, tensor in target.items():
        top, rest = key.split(".", 1)
        split[top][rest] = state.get(key, tensor)
    return Port(state=split, filled=len(state), total=len(target), unfilled=unfilled)
