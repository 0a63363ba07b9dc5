"""Dry-run a weight file against the full-size DynaScene models on the meta device (no weight memory)."""

from __future__ import annotations

import os

import torch

from .detect import detect, unwrap
from .io import CheckpointError, read_weights

SHOW = 5


def _meta_models(motion_mid: bool = True, blocks_per_scale: int = 1):
    from dynascene_core.models import DynaSceneConfig, DynaSceneModels

    config = DynaSceneConfig.preset("sd15")
    config.motion["use_motion_mid_block"] = motion_mid
    config.camera["blocks_per_scale"] = blocks_per_scale
    with torch.device("meta"):
        return DynaSceneModels(config)


def inspect_file(path: str | os.PathLike) -> dict:
    """``{"file", "format", "description", "loadable_as", "tensors", "loadable", "reports" | "error"...}``."""
    from .cameractrl import load_cameractrl
    from .dynascene_format import load_dynascene
    from .motion import load_motion_module
    from .sd15 import load_sd15_inpainting, load_vae

    path = os.fspath(path)
    result: dict = {"file": path}
    try:
        wf = read_weights(path) if not os.path.isdir(path) else None
        if wf is not None:
            tensors = unwrap(wf.tensors)
            det = detect(tensors, wf.metadata)
            result.update(format=det.format, description=det.description, loadable_as=list(det.loadable_as),
                          tensors=len(wf.tensors))
        else:
            result.update(format="folder", description="diffusers folder", loadable_as=[], tensors=None)
        fmt = result["format"]
        if fmt in ("sd15_inpainting_ldm", "diffusers_unet", "folder"):
            m = _meta_models()
            reports = load_sd15_inpainting(path, denoiser_unet=m.denoiser.unet, reference_unet=m.reference_net.unet,
                                           vae=m.vae if fmt != "diffusers_unet" else None)
        elif fmt.startswith(("animatediff", "motion_adapter")):
            m = _meta_models(motion_mid=fmt in ("animatediff_v2",) or any(k.startswith("mid_block.") for k in tensors))
            reports = [load_motion_module(path, m.denoiser.unet)]
        elif fmt == "cameractrl":
            m = _meta_models(blocks_per_scale=2)
            reports = load_cameractrl(path, camera_encoder=m.camera_encoder, denoiser_unet=m.denoiser.unet)
        elif fmt in ("vae_ldm", "vae_diffusers"):
            reports = [load_vae(path, _meta_models().vae)]
        elif fmt == "clip_vision":
            from .clip_vision import load_image_encoder

            reports = [load_image_encoder(path, _meta_models().image_encoder)]
        elif fmt == "dynascene":
            from .dynascene_format import read_dynascene

            config, _, _ = read_dynascene(path)
            from dynascene_core.models import DynaSceneModels

            with torch.device("meta"):
                models = DynaSceneModels(config)
            reports = [load_dynascene(path, models)[1]]
        else:
            raise CheckpointError(path, "cannot be loaded by DynaScene", looks_like=result.get("description"),
                                  expected="SD1.5 inpainting, AnimateDiff motion module, CameraCtrl, CLIP vision, "
                                           "SD VAE or DynaScene file")
        result.update(loadable=True, reports=[r.to_dict() for r in reports], missing=0, unexpected=0)
    except CheckpointError as exc:
        result.update(loadable=False, error=str(exc), missing=len(exc.missing), unexpected=len(exc.unexpected),
                      first_missing=exc.missing[:SHOW], first_unexpected=exc.unexpected[:SHOW])
    return result
