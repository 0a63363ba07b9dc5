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

from ..io_utils import atomic_output

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pth", ".pt", ".bin")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOLS = (b"\x02", b"\x03", b"\x04", b"\x05")
_SNIFF_BYTES = 512


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
    The container is recognised from the content, so a renamed file still loads; anything that is not
    weights (empty, HTML page, text, unknown bytes, truncated) raises a one-line :class:`CheckpointError`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(path, "file not found")
    if not path.lower().endswith(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES):
        raise CheckpointError(
            path,
            "unknown file type",
            expected=f"one of {', '.join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)}",
        )
    container = weight_container(path)
    if container == "safetensors":
        return _read_safetensors(path, device)
    if container == "pytorch":
        return _read_pickle(path, device)
    raise CheckpointError(path, container)


def check_weight_file(path: str | os.PathLike, role: str | None = None) -> None:
    """Refuse, cheaply and before any model is built, a path that is missing or is not a weight file
    (empty, truncated, a web page, text...); folders (diffusers / transformers layouts) pass. ``role``
    (e.g. a config key) is added to the message."""
    path = os.fspath(path)
    suffix = f" ({role})" if role else ""
    if not os.path.exists(path):
        raise CheckpointError(path, f"file not found{suffix}: put the file there or give its path (the README's "
                                    "'Model files' says where to get each file)")
    if os.path.isfile(path):
        container = weight_container(path)
        if container not in ("safetensors", "pytorch"):
            raise CheckpointError(path, f"{container}{suffix}")


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """``(metadata, {key: shape})`` of a safetensors file from its header alone (no tensor data read)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(path, "file not found")
    container = weight_container(path)
    if container != "safetensors":
        raise CheckpointError(path, "not a safetensors file" if container == "pytorch" else container)
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {}), {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"truncated or damaged safetensors file ({_safetensors_reason(exc)})") from exc


def read_json_config(path: str | os.PathLike) -> dict:
    """A model folder's ``config.json`` as a dict; :class:`CheckpointError` naming the file otherwise."""
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"not a readable JSON config ({_first_line(exc)})") from exc
    if not isinstance(config, dict):
        raise CheckpointError(path, f"holds a JSON {type(config).__name__}, not a config object")
    return config


def weight_container(path: str) -> str:
    """``"safetensors"`` or ``"pytorch"`` from a file's first bytes and its length, else a phrase saying what
    the file is instead (empty, truncated, an HTML page, a Git LFS pointer, text, unrecognised bytes).
    Cheap: reads the first bytes, a safetensors header or a zip archive's directory, never the tensors."""
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    size = os.path.getsize(path)
    if head[8:9] == b"{":  # safetensors: u64 header length, then a JSON header, then the tensor data
        return _safetensors_size_problem(path, int.from_bytes(head[:8], "little"), size) or "safetensors"
    if head.startswith(_ZIP_MAGIC):  # torch.save's zip archive: its directory is at the end
        import zipfile

        return "pytorch" if zipfile.is_zipfile(path) else \
            f"truncated or damaged PyTorch file: {size} bytes and no zip directory at the end"
    if head[:1] == b"\x80" and head[1:2] in _PICKLE_PROTOCOLS:
        return "pytorch"  # a plain pickle (protocol 2-5)
    if not head:
        return "empty file (0 bytes), not weights: download or copy it again"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return ("an HTML page, not weights: the download saved a web page (a login or error page); "
                "download the file itself (on Hugging Face the 'resolve' link, not 'blob')")
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the weights: run 'git lfs pull' or download the file itself"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"not a weight file: {size} bytes of unrecognised content (neither safetensors nor PyTorch)"
    return f"a text file ({size} bytes), not weights"


def _safetensors_size_problem(path: str, header_bytes: int, size: int) -> str | None:
    """Why a safetensors file is shorter than its header says, or None when the sizes agree."""
    if header_bytes > size - 8:
        return f"truncated safetensors file: its header alone needs {header_bytes + 8} bytes, the file has {size}"
    with open(path, "rb") as handle:
        handle.seek(8)
        try:
            header = json.loads(handle.read(header_bytes))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "damaged safetensors file: its header is not valid JSON"
    ends = [entry["data_offsets"][1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets") or ()) == 2]
    needed = 8 + header_bytes + max(ends, default=0)
    if needed > size:
        return f"truncated safetensors file: {size} of {needed} bytes"
    return None


def _read_safetensors(path: str, device) -> WeightFile:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt", device=str(device)) as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"truncated or damaged safetensors file ({_safetensors_reason(exc)})") from exc
    return WeightFile(path, tensors, metadata)


def _read_pickle(path: str, device) -> WeightFile:
    try:
        with open(path, "rb") as handle:  # a handle: torch picks no format from a (renamed) file's suffix
            obj = torch.load(handle, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:  # the safe unpickler met something it does not accept
        raise CheckpointError(
            path,
            "refused: this pickle holds objects the safe loader does not accept (code that would run when "
            "loaded, or other non-tensor objects); convert it to .safetensors with a tool you trust, or re-save "
            "only its state dict",
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any parse failure of a damaged file, reported with its path
        raise CheckpointError(path, f"truncated or damaged PyTorch file ({_first_line(exc)})") from exc
    if not isinstance(obj, Mapping):
        raise CheckpointError(path, f"holds a {type(obj).__name__}, not a dict of tensors")
    return WeightFile(path, flatten_state_dict(obj))


def _safetensors_reason(exc: BaseException) -> str:
    return _first_line(exc).replace("Error while deserializing header: ", "")


def _first_line(exc: BaseException) -> str:
    """The first sentence of an exception's message (library messages can run to many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0].split(". ")[0] if lines else type(exc).__name__)[:200]


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

    Non-string metadata values are JSON-encoded. Written with :func:`~dynascene_core.io_utils.atomic_output`.
    """
    from safetensors.torch import save_file

    path = os.fspath(path)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_output(path) as tmp:
        save_file(contiguous, tmp, metadata=meta)
