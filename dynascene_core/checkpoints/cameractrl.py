"""CameraCtrl ``CameraCtrl.ckpt`` (AnimateDiff-v3 based) -> DynaScene camera encoder and camera adaptor.

Source layout (hehao13/CameraCtrl ``cameractrl/models/pose_adaptor.py``, trained with
``pose_encoder_kwargs``: cin 384, 2 ResNet blocks per scale, ksize 1, sk true, AvgPool downsampling,
one temporal self-attention per block):

- ``pose_encoder_state_dict.encoder_conv_in.*``                              -> ``conv_in.*``
- ``...encoder_down_conv_blocks.{i}.{j}.{in_conv,block1,block2}.*``          -> ``scales.{i}.{j}.resnet.*``
- ``...encoder_down_attention_blocks.{i}.{j}.attention_blocks.0.*``          -> ``scales.{i}.{j}.temporal.attn1.*``
- ``...norms.0`` -> ``temporal.norm1``, ``...ff.*`` -> ``temporal.ff.*``, ``...ff_norm`` -> ``temporal.norm3``
- ``...attention_blocks.0.pos_encoder.pe``                                    -> regenerated
- ``attention_processor_state_dict.<block>.motion_modules.{j}.temporal_transformer.transformer_blocks.0
  .attention_blocks.0.processor.qkv_merge.*`` -> ``<block>.motion_modules.{j}.transformer_blocks.0.attn1
  .processor.qkv_merge.*`` (the ``h + W(h + p)`` adaptor, down and up blocks; CameraCtrl has no mid block,
  so a mid-block adaptor stays zero and the report says so)
- ``optimizer_state_dict.*`` (training state in some releases) -> not used.
"""

from __future__ import annotations

import os
import re

import torch

from .detect import detect, unwrap
from .io import CheckpointError, read_weights
from ..models.params import is_camera_adaptor_key
from .report import LoadReport, load_into

ENCODER = "pose_encoder_state_dict."
ADAPTOR = "attention_processor_state_dict."
OPTIMIZER = "optimizer_state_dict."

_RENAMES = (
    (re.compile(r"^encoder_conv_in\."), "conv_in."),
    (re.compile(r"^encoder_down_conv_blocks\.(\d+)\.(\d+)\."), r"scales.\1.\2.resnet."),
    (re.compile(r"^encoder_down_attention_blocks\.(\d+)\.(\d+)\.attention_blocks\.0\."), r"scales.\1.\2.temporal.attn1."),
    (re.compile(r"^encoder_down_attention_blocks\.(\d+)\.(\d+)\.norms\.0\."), r"scales.\1.\2.temporal.norm1."),
    (re.compile(r"^encoder_down_attention_blocks\.(\d+)\.(\d+)\.ff_norm\."), r"scales.\1.\2.temporal.norm3."),
    (re.compile(r"^encoder_down_attention_blocks\.(\d+)\.(\d+)\.ff\."), r"scales.\1.\2.temporal.ff."),
)


def convert_pose_encoder(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """CameraCtrl pose-encoder keys (without prefix) -> CameraEncoder keys; returns (state, regenerated, unknown)."""
    state, regenerated, unknown = {}, [], []
    for key, value in tensors.items():
        if key.endswith("pos_encoder.pe"):
            regenerated.append(key)
            continue
        for pattern, repl in _RENAMES:
            new, n = pattern.subn(repl, key)
            if n:
                state[new] = value
                break
        else:
            unknown.append(key)
    return state, regenerated, unknown


def convert_adaptor(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """CameraCtrl attention-processor keys (without prefix) -> ``UNetMotionModel`` adaptor keys; (state, unknown)."""
    state, unknown = {}, []
    for key, value in tensors.items():
        new = key.replace(".temporal_transformer.", ".").replace(".attention_blocks.0.processor.", ".attn1.processor.")
        if ".attn1.processor.qkv_merge." in new:
            state[new] = value
        else:
            unknown.append(key)
    return state, unknown


def blocks_per_scale(keys, scale_prefix: str = "encoder_down_conv_blocks") -> int:
    """Number of ResNet+attention pairs in the first scale, from key names ``<scale_prefix>.0.<j>.*``."""
    pattern = re.compile(re.escape(scale_prefix) + r"\.0\.(\d+)\.")
    js = {int(m.group(1)) for k in keys if (m := pattern.match(k))}
    return max(js) + 1 if js else 0


def read_cameractrl(path: str | os.PathLike):
    """-> (encoder state, adaptor state, regenerated keys, not-used keys by reason, blocks per scale)."""
    path = os.fspath(path)
    wf = read_weights(path)
    tensors = unwrap(wf.tensors)
    det = detect(tensors, wf.metadata)
    if det.format != "cameractrl":
        raise CheckpointError(path, "not a CameraCtrl checkpoint", looks_like=det.description,
                              expected="CameraCtrl.ckpt with pose_encoder_state_dict and attention_processor_state_dict")
    enc_src = {k[len(ENCODER):]: v for k, v in tensors.items() if k.startswith(ENCODER)}
    ada_src = {k[len(ADAPTOR):]: v for k, v in tensors.items() if k.startswith(ADAPTOR)}
    not_used = {"optimizer state (training only)": [k for k in tensors if k.startswith(OPTIMIZER)]}
    other = [k for k in tensors if not k.startswith((ENCODER, ADAPTOR, OPTIMIZER))]
    encoder, regenerated, unknown_enc = convert_pose_encoder(enc_src)
    adaptor, unknown_ada = convert_adaptor(ada_src)
    unknown = other + [ENCODER + k for k in unknown_enc] + [ADAPTOR + k for k in unknown_ada]
    if unknown:
        raise CheckpointError(path, "has CameraCtrl keys that do not map to DynaScene's camera encoder/adaptor",
                              looks_like=det.description, unexpected=unknown,
                              hint="only the qkv_merge adaptor variant (query and key/value conditioned) maps")
    regenerated = [ENCODER + k for k in regenerated]
    return encoder, adaptor, regenerated, {k: v for k, v in not_used.items() if v}, blocks_per_scale(enc_src)


def load_cameractrl(
    path: str | os.PathLike,
    *,
    camera_encoder: torch.nn.Module | None = None,
    denoiser_unet: torch.nn.Module | None = None,
) -> list[LoadReport]:
    """Load CameraCtrl weights into a ``CameraEncoder`` (needs ``blocks_per_scale=2``) and/or the camera
    adaptor of ``denoiser_unet``. Returns one report per target."""
    path = os.fspath(path)
    encoder, adaptor, regenerated, not_used, n_blocks = read_cameractrl(path)
    reports = []
    if camera_encoder is not None:
        model_blocks = blocks_per_scale(camera_encoder.state_dict(), "scales")
        if model_blocks != n_blocks:
            raise CheckpointError(path, f"the CameraCtrl encoder has {n_blocks} blocks per scale, the camera "
                                  f"encoder config has {model_blocks}", looks_like="CameraCtrl pose encoder",
                                  expected=f"camera config blocks_per_scale = {n_blocks}")
        report = LoadReport(path, "cameractrl", "camera encoder", regenerated=regenerated, not_used=not_used)
        reports.append(load_into(camera_encoder, encoder, report))
    if denoiser_unet is not None:
        report = LoadReport(path, "cameractrl", "denoiser camera adaptor", not_used=not_used,
                            notes=["CameraCtrl was trained with AnimateDiff v3 motion modules; with other motion "
                                   "modules the adaptor needs fine-tuning"])
        missing = [k for k in denoiser_unet.state_dict() if is_camera_adaptor_key(k) and k not in adaptor]
        if missing:
            report.notes.append(f"{len(missing)} adaptor parameters have no CameraCtrl counterpart (mid block): "
                                "zero-initialised")
        mid = lambda k: is_camera_adaptor_key(k) and k.startswith("mid_block.")  # noqa: E731
        reports.append(load_into(denoiser_unet, adaptor, report, scope=is_camera_adaptor_key, fresh_init=mid))
    return reports
