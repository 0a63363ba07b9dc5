"""Loading Robust Video Matting weights (``rvm_mobilenetv3.pth``, ``rvm_resnet50.pth`` or safetensors copies).

The variant is detected from the keys; every key of the file must be used and every weight of the
model must be present (BatchNorm ``num_batches_tracked`` counters excepted: they do not affect
inference and some conversions drop them). Anything else raises :class:`CheckpointError`.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Mapping

import torch

from ..checkpoints.io import CheckpointError, read_weights
from .rvm import VARIANTS, RobustVideoMatting

# one key that only the given variant's backbone has
_VARIANT_MARKERS = {
    "mobilenetv3": "backbone.features.0.0.weight",
    "resnet50": "backbone.layer1.0.conv1.weight",
}
# containers some tools wrap a state dict in; read_weights flattens them to a key prefix
_WRAPPER_PREFIXES = ("state_dict.", "model.", "module.")
_OPTIONAL_SUFFIX = "num_batches_tracked"
_EXPECTED = ("a Robust Video Matting state dict (rvm_mobilenetv3.pth or rvm_resnet50.pth from "
             "github.com/PeterL1n/RobustVideoMatting/releases, or a safetensors copy)")


def default_dtype(device: str | torch.device) -> torch.dtype:
    """fp16 on CUDA, fp32 elsewhere (RVM is trained in fp32 and runs fine in fp16 on GPUs)."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def load_rvm(path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
             variant: str | None = None) -> RobustVideoMatting:
    """Read an RVM weight file, detect its variant and return the model in eval mode on ``device``.

    ``dtype`` defaults to fp16 on CUDA and fp32 on CPU. ``variant`` (optional) insists on
    ``"mobilenetv3"`` or ``"resnet50"``; a file of the other variant is then an error.
    """
    weights = read_weights(path)
    return rvm_from_state_dict(weights.tensors, device, dtype, variant=variant, source=weights.path)


def rvm_from_state_dict(tensors: Mapping[str, torch.Tensor], device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None, variant: str | None = None,
                        source: str | os.PathLike | None = None) -> RobustVideoMatting:
    """Build and fill a :class:`RobustVideoMatting` from a flat ``{key: tensor}`` dict."""
    tensors = _strip_wrapper(dict(tensors))
    found = detect_variant(tensors, source)
    if variant is not None and variant != found:
        raise CheckpointError(source, f"is the RVM {found} model, but {variant} was asked for",
                              looks_like=f"RVM {found}", expected=f"RVM {variant} (rvm_{variant}.pth)")
    variant = found
    model = RobustVideoMatting(variant)
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            source, f"does not match the RVM {variant} layout", looks_like=f"RVM {variant} (by its backbone keys)",
            expected=_EXPECTED, missing=missing, unexpected=unexpected,
        )
    wrong = [f"{k} {tuple(tensors[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if wrong:
        raise CheckpointError(source, f"{len(wrong)} tensors have the wrong shape for RVM {variant}: "
                              + ", ".join(wrong[:5]), expected=_EXPECTED)
    model.load_state_dict(tensors, strict=False)
    return model.to(device=device, dtype=dtype or default_dtype(device)).eval()


def detect_variant(tensors: Mapping[str, torch.Tensor], source: str | os.PathLike | None = None) -> str:
    """``"mobilenetv3"`` or ``"resnet50"`` from the backbone keys; :class:`CheckpointError` otherwise."""
    found = [variant for variant, key in _VARIANT_MARKERS.items() if key in tensors]
    if len(found) == 1 and "refiner.box_filter.weight" in tensors:
        return found[0]
    reference = RobustVideoMatting(VARIANTS[0]).state_dict()
    raise CheckpointError(
        source, "is not a Robust Video Matting checkpoint", looks_like=describe_keys(tensors),
        expected=_EXPECTED, missing=[k for k in reference if k not in tensors][:5],
    )


def describe_keys(tensors: Mapping[str, torch.Tensor]) -> str:
    """One line saying what a state dict holds: tensor count and its most common top-level prefixes."""
    if not tensors:
        return "an empty file (no tensors)"
    prefixes = Counter(key.split(".", 1)[0] for key in tensors)
    top = ", ".join(f"{name}.* ({count})" for name, count in prefixes.most_common(4))
    return f"{len(tensors)} tensors under {top}"


def _strip_wrapper(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if tensors and all(key.startswith(prefix) for key in tensors):
            return _strip_wrapper({key[len(prefix):]: value for key, value in tensors.items()})
    return tensors
