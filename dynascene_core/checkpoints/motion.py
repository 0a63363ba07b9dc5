"""AnimateDiff motion modules (v1, v2, v3, diffusers ``MotionAdapter``) into ``UNetMotionModel`` keys.

AnimateDiff names (``...motion_modules.j.temporal_transformer.transformer_blocks.0.attention_blocks.0``,
``norms.0/1``, ``ff_norm``) become diffusers names (``...motion_modules.j.transformer_blocks.0.attn1``,
``norm1/norm2``, ``norm3``) through diffusers' own ``convert_animatediff_checkpoint_to_diffusers``.

- ``pos_encoder.pe`` / ``pos_embed.pe`` tables are *regenerated*: diffusers rebuilds the same sinusoidal
  table from the config for any length (AnimateDiff's formula, see the tests), so they are not loaded.
- Files without a mid block (v1, v3) loaded into a config with one (DynaScene follows v2): the mid
  motion module is set to identity by zeroing its ``proj_out`` (AnimateDiff's own fresh init), and the
  report says so. The config is not changed behind the user's back.
- The camera adaptor (``...attn1.processor.*``) is absent from plain motion files: zeroed (fresh init,
  the adaptor then changes nothing) and listed in the report.
"""

from __future__ import annotations

import os

import torch

from ..models.params import is_camera_adaptor_key
from .detect import detect, unwrap
from .io import CheckpointError, read_weights
from .report import LoadReport, load_into

MID = "mid_block.motion_modules."
MOTION_FORMATS = ("animatediff_v1", "animatediff_v2", "animatediff_v3", "motion_adapter_diffusers")


def convert_motion_state_dict(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """AnimateDiff or MotionAdapter names -> ``UNetMotionModel`` names; returns (state dict, regenerated keys)."""
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

    regenerated = [k for k in tensors if k.endswith(("pos_encoder.pe", "pos_embed.pe"))]
    weights = {k: v for k, v in tensors.items() if k not in regenerated}
    return convert_animatediff_checkpoint_to_diffusers(weights), regenerated


def read_motion_module(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[str], str, str]:
    """Read a motion-module file -> (diffusers-named state dict, regenerated source keys, format, description)."""
    path = os.fspath(path)
    wf = read_weights(path)
    tensors = unwrap(wf.tensors)
    det = detect(tensors, wf.metadata)
    if det.format not in MOTION_FORMATS:
        raise CheckpointError(path, "not an AnimateDiff motion module", looks_like=det.description,
                              expected="mm_sd_v15_v2.ckpt / mm_sd_v15.ckpt / v3_sd15_mm.ckpt or a diffusers "
                                       "MotionAdapter (keys down_blocks.*.motion_modules.*)")
    state, regenerated = convert_motion_state_dict(tensors)
    return state, regenerated, det.format, det.description


def load_motion_module(path: str | os.PathLike, denoiser_unet: torch.nn.Module) -> LoadReport:
    """Load a motion-module file into the motion modules of ``denoiser_unet`` (a ``UNetMotionModel``)."""
    state, regenerated, fmt, desc = read_motion_module(path)
    has_mid_in_model = any(k.startswith(MID) for k in denoiser_unet.state_dict())
    has_mid_in_file = any(k.startswith(MID) for k in state)
    report = LoadReport(os.fspath(path), fmt, "denoiser motion modules", regenerated=regenerated)
    scope, fresh = (lambda k: "motion_modules." in k), is_camera_adaptor_key
    if has_mid_in_file and not has_mid_in_model:
        raise CheckpointError(path, "has a mid-block motion module but the model config has none",
                              looks_like=desc, expected="a config with motion.use_motion_mid_block = true",
                              unexpected=[k for k in state if k.startswith(MID)])
    if has_mid_in_model and not has_mid_in_file:
        report.notes.append("the file has no mid-block motion module: the model's mid motion module is set "
                            "to identity (its proj_out zeroed); its other weights are left as they were")
        scope = lambda k: "motion_modules." in k and (  # noqa: E731
            not k.startswith(MID) or is_camera_adaptor_key(k) or k.startswith(MID + "0.proj_out."))
        fresh = lambda k: is_camera_adaptor_key(k) or k.startswith(MID + "0.proj_out.")  # noqa: E731
    if any(is_camera_adaptor_key(k) for k in denoiser_unet.state_dict()):
        report.notes.append("camera adaptor not in this file: zero-initialised (it changes nothing until trained)")
    return load_into(denoiser_unet, state, report, scope=scope, fresh_init=fresh)
