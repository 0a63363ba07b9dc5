"""DynaScene networks built from diffusers/transformers blocks (see docs/ARCHITECTURE.md for names).

:class:`DynaSceneModels` holds every network of the method; ``DynaSceneModels.build(config)`` makes
them with random weights (no network access; configs ship in :mod:`.config`), and the checkpoint
loaders fill them. Names are imported on first use, so ``import dynascene_core.models`` (and the
cameras, checkpoints and nodes that import it) does not load diffusers or transformers.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "CameraEncoder": "camera_encoder", "level_sizes": "camera_encoder",
    "PatchCodec": "codec",
    "ImageEncoder": "clip", "clip_preprocess": "clip", "zero_image_embeds_like": "clip",
    "PRESETS": "config", "DynaSceneConfig": "config",
    "DynaSceneDenoiser": "denoiser",
    "DynaSceneModels": "networks", "PARTS": "networks",
    "parameter_groups": "params", "set_trainable": "params", "trainable_parameters": "params",
    "ReferenceNet": "reference", "reference_input": "reference",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
