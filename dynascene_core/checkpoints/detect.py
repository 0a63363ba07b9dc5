"""Recognise what a weight file is from its key names and a few shapes, before converting anything.

:func:`detect` returns a :class:`Detection` for every file, including the wrong ones (SD2, SDXL,
a 4-channel SD1.5 U-Net, RVM, anything unknown), so error messages can say what the file looks like.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch

from .io import SAFETENSORS_SUFFIXES, read_safetensors_header, read_weights

LDM_UNET = "model.diffusion_model."
LDM_VAE = "first_stage_model."
LDM_TEXT = "cond_stage_model."
WRAPPER = "state_dict."
OTHER_FAMILY_CONTEXT = (1024, 2048)  # SD2 text context; SDXL (caught earlier by label_emb) uses 2048


@dataclass(frozen=True)
class Detection:
    """``format`` is a stable id; ``description`` is for people; ``loadable_as`` lists pack targets."""

    format: str
    description: str
    loadable_as: tuple[str, ...] = ()


def unwrap(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a ``state_dict.`` wrapper around every key (Lightning/AnimateDiff training checkpoints)."""
    if tensors and all(k.startswith(WRAPPER) for k in tensors):
        return {k[len(WRAPPER):]: v for k, v in tensors.items()}
    return dict(tensors)


def _shape(tensors, key):
    t = tensors.get(key)
    return tuple(t.shape) if t is not None else None


def detect(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> Detection:
    """Classify an (unwrapped) flat state dict."""
    metadata = metadata or {}
    keys = list(tensors)
    if metadata.get("format") == "dynascene":
        return Detection("dynascene", f"DynaScene file (format version {metadata.get('format_version')})",
                         ("dynascene",))
    if any(k.startswith("pose_encoder_state_dict.") for k in keys):
        return Detection("cameractrl", "CameraCtrl checkpoint (pose encoder + camera adaptor)",
                         ("camera_encoder", "camera_adaptor"))
    if any(k.startswith(LDM_UNET) for k in keys):
        return _detect_ldm(tensors)
    if any(".motion_modules." in k for k in keys) and not any(".resnets." in k for k in keys):
        return _detect_motion(tensors)
    if "conv_in.weight" in tensors and any(k.startswith("down_blocks.0.resnets.") for k in keys):
        c_in = _shape(tensors, "conv_in.weight")[1]
        ctx = next((tuple(v.shape)[1] for k, v in tensors.items() if k.endswith("attn2.to_k.weight")), None)
        desc = f"diffusers U-Net ({c_in} input channels, cross-attention width {ctx})"
        ok = c_in == 9 and ctx not in OTHER_FAMILY_CONTEXT
        return Detection("diffusers_unet", desc, ("denoiser_2d", "reference_net") if ok else ())
    if any(k.startswith(("encoder.down.", LDM_VAE)) for k in keys):
        return Detection("vae_ldm", "VAE in LDM layout (encoder.down.* / decoder.up.*)", ("vae",))
    if any(k.startswith("encoder.down_blocks.") for k in keys) and any(k.startswith("decoder.") for k in keys):
        return Detection("vae_diffusers", "VAE in diffusers AutoencoderKL layout", ("vae",))
    if "vision_model.embeddings.patch_embedding.weight" in tensors:
        proj = "visual_projection.weight" in tensors
        return Detection("clip_vision", "CLIP vision tower (transformers layout)"
                         + ("" if proj else " without visual_projection"), ("image_encoder",) if proj else ())
    if any(k.startswith("project_mat.") for k in keys) and any(k.startswith("backbone.") for k in keys):
        return Detection("rvm", "Robust Video Matting weights (a matting model, not a diffusion model)")
    return Detection("unknown", f"unrecognised weight file ({len(keys)} tensors, first keys: "
                     f"{', '.join(sorted(keys)[:3])})")


def _detect_ldm(tensors) -> Detection:
    keys = list(tensors)
    if any(k.startswith((LDM_UNET + "label_emb.", "conditioner.")) for k in keys):
        return Detection("sdxl_ldm", "SDXL checkpoint (label_emb / conditioner keys)")
    ctx = _shape(tensors, LDM_UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight")
    c_in = _shape(tensors, LDM_UNET + "input_blocks.0.0.weight")
    if ctx is not None and ctx[1] in OTHER_FAMILY_CONTEXT:
        return Detection("sd2_ldm", "Stable Diffusion 2.x checkpoint (1024-d text context)")
    if ctx is not None and c_in is not None:  # the exact widths are checked against the target model
        if c_in[1] == 9:
            return Detection("sd15_inpainting_ldm", "SD1.5 inpainting single-file checkpoint (9-channel conv_in)",
                             ("denoiser_2d", "reference_net", "vae"))
        return Detection("sd15_ldm", f"SD1.5 single-file checkpoint with a {c_in[1]}-channel conv_in "
                         "(not the inpainting model)", ("vae",))
    return Detection("ldm_unknown", "LDM-layout checkpoint of an unknown U-Net family")


def _detect_motion(tensors) -> Detection:
    keys = list(tensors)
    mid = any(k.startswith("mid_block.motion_modules.") for k in keys)
    if not any(".temporal_transformer." in k for k in keys):
        return Detection("motion_adapter_diffusers", "AnimateDiff motion modules in diffusers MotionAdapter layout"
                         + (" (with mid block)" if mid else " (no mid block)"), ("motion_modules",))
    pe_len = next((v.shape[1] for k, v in tensors.items() if k.endswith("pos_encoder.pe")), None)
    if mid:
        return Detection("animatediff_v2", "AnimateDiff v2 motion module (mm_sd_v15_v2 layout, mid block)",
                         ("motion_modules",))
    if pe_len == 24:
        return Detection("animatediff_v1", "AnimateDiff v1 motion module (mm_sd_v15 layout: no mid block, "
                         "24-frame position table)", ("motion_modules",))
    return Detection("animatediff_v3", "AnimateDiff v3 motion module (v3_sd15_mm layout, no mid block)",
                     ("motion_modules",))


def detect_file(path: str | os.PathLike) -> Detection:
    """:func:`detect` for a weight file. Safetensors files are classified from their header alone (meta
    tensors of the stored shapes, no tensor data read); pickled files are read with ``weights_only``."""
    path = os.fspath(path)
    if path.lower().endswith(SAFETENSORS_SUFFIXES) and os.path.isfile(path):
        metadata, shapes = read_safetensors_header(path)
        return detect(unwrap({k: torch.empty(shape, device="meta") for k, shape in shapes.items()}), metadata)
    weights = read_weights(path)
    return detect(unwrap(weights.tensors), weights.metadata)
