"""Reading weight files safely, and the one error type every loader raises.

Every loader in the pack goes through :func:`read_weights`: safetensors files are read directly,
pickled files (``.ckpt``, ``.pth``, ``.pt``, ``.bin``) only with ``torch.load(weights_only=True)``,
so a file that would execute code when unpickled is refused instead of run.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pth", ".pt", ".bin")


class CheckpointError(ValueError):
    """A weight file could not be used: names the file, what it looks like and what was expected."""

    def __init__(
        self,
        path: str | os.PathLike | None,
        problem: str,
        *,
        looks_like: str | None = None,
        expected: str | None = None,
        missing: Iterable[str] = (),
        unexpected: Iterable[str] = (),
        hint: str | None = None,
        show: int = 5,
    ):
        missing, unexpected = sorted(missing), sorted(unexpected)
        lines = [f"{os.fspath(path) if path is not None else '<state dict>'}: {problem}"]
        if looks_like:
            lines.append(f"  the file looks like: {looks_like}")
        if expected:
            lines.append(f"  expected: {expected}")
        if missing:
            lines.append(f"  {len(missing)} missing keys, first: {', '.join(missing[:show])}")
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected keys, first: {', '.join(unexpected[:show])}")
        if hint:
            lines.append(f"  {hint}")
        super().__init__("\n".join(lines))
        self.path = path
        self.looks_like = looks_like
        self.missing = missing
        self.unexpected = unexpected


@dataclass
class WeightFile:
    """Tensors of one file plus its safetensors metadata (empty for pickled files)."""

    path: str
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)


def read_weights(path: str | os.PathLike, device: str | torch.device = "cpu") -> WeightFile:
    """Read a safetensors or pickled weight file into a flat ``{key: tensor}`` dict.

    Pickled files are opened with ``weights_only=True``; nested dicts (``{"state_dict": {...}}``,
    CameraCtrl's ``{"pose_encoder_state_dict": ...}``) are flattened with ``.``-joined keys so the
    format detectors see one namespace. Non-tensor leaves (step counters, strings) are dropped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(path, "file not found")
    lower = path.lower()
    if lower.endswith(SAFETENSORS_SUFFIXES):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt", device=str(device)) as f:
                metadata = dict(f.metadata() or {})
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(path, f"not a readable safetensors file ({exc})") from exc
        return WeightFile(path, tensors, metadata)
    if lower.endswith(PICKLE_SUFFIXES):
        try:
            obj = torch.load(path, map_location=device, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise CheckpointError(
                path,
                "refused: this pickle contains objects that would run code when loaded "
                "(only plain tensors and containers are accepted)",
                hint="convert it to .safetensors with a tool you trust, or re-save only its state dict",
            ) from exc
        except (RuntimeError, EOFError, OSError) as exc:
            raise CheckpointError(path, f"not a readable PyTorch file ({exc})") from exc
        if not isinstance(obj, Mapping):
            raise CheckpointError(path, f"holds a {type(obj).__name__}, not a dict of tensors")
        return WeightFile(path, flatten_state_dict(obj))
    raise CheckpointError(
        path,
        "unknown file type",
        expected=f"one of {', '.join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)}",
    )


def flatten_state_dict(obj: Mapping, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten nested mappings of tensors to ``{"a.b.c": tensor}``; non-tensor leaves are dropped."""
    flat: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            flat[name] = value
        elif isinstance(value, Mapping):
            flat.update(flatten_state_dict(value, name + "."))
    return flat


def write_safetensors_atomic(
    tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, object] | None = None
) -> None:
    """Write a safetensors file so that a crash mid-write never leaves a truncated file at ``path``.

    Non-string metadata values are JSON-encoded. The file is written beside the target, fsynced and
    renamed over it (atomic on POSIX and Windows for same-directory renames).
    """
    from safetensors.torch import save_file

    path = os.fspath(path)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        save_file(contiguous, tmp, metadata=meta)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
