"""SD1.5 inpainting U-Net and SD VAE: single files (LDM layout) and diffusers folders.

The LDM -> diffusers rename is diffusers' own (``convert_ldm_unet_checkpoint``,
``convert_ldm_vae_checkpoint``); this module adds what those do not: family checks (SD2, SDXL,
4-channel U-Nets fail with a clear error), accounting for every key (the text encoder
``cond_stage_model.*`` is reported as not used by DynaScene, EMA copies as not used), and an explicit,
opt-in widening of a 4-channel ``conv_in`` to 9 channels.

Both U-Nets of DynaScene start from the same inpainting weights: the denoiser's 2D part
(``DynaSceneDenoiser.unet``, a ``UNetMotionModel``: every key outside ``motion_modules``) and the
ReferenceNet (``ReferenceNet.unet``, a ``UNet2DConditionModel``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from .detect import LDM_TEXT, LDM_UNET, LDM_VAE, Detection, detect, unwrap
from .io import CheckpointError, read_json_config, read_weights
from .report import LoadReport, consumed_keys, load_into

EXPECTED_UNET = "the SD1.5 inpainting U-Net (9-channel conv_in [latent|mask|foreground], 768-d cross-attention)"


@dataclass
class SD15Weights:
    """Converted tensors of one SD1.5 source, in diffusers names, with the unused keys by reason."""

    source: str
    detection: Detection
    unet: dict[str, torch.Tensor]
    vae: dict[str, torch.Tensor]
    not_used: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def widen_conv_in_weight(weight: torch.Tensor, in_channels: int = 9) -> torch.Tensor:
    """``(C, 4, 3, 3)`` -> ``(C, 9, 3, 3)``: the 4 latent channels kept, mask and foreground channels zero.

    With zero weights for the 5 new channels the widened U-Net computes exactly what the 4-channel
    one did, so it is a valid start for fine-tuning on inpainting inputs; it is NOT an inpainting
    model until trained.
    """
    out = weight.new_zeros(weight.shape[0], in_channels, *weight.shape[2:])
    out[:, : weight.shape[1]] = weight
    return out


def convert_ldm_unet(tensors: dict[str, torch.Tensor], layers_per_block: int, *, path: str | None,
                     widen_conv_in: bool = False) -> tuple[dict[str, torch.Tensor], set[str]]:
    """LDM ``model.diffusion_model.*`` -> diffusers U-Net keys; returns (state dict, consumed source keys)."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    ldm = {k: v for k, v in tensors.items() if k.startswith(LDM_UNET)}
    unet = convert_ldm_unet_checkpoint(ldm, {"layers_per_block": layers_per_block})
    consumed = consumed_keys(ldm, unet.values())
    return _maybe_widen(unet, path, widen_conv_in), consumed


def _maybe_widen(unet: dict[str, torch.Tensor], path, widen_conv_in: bool) -> dict[str, torch.Tensor]:
    conv_in = unet.get("conv_in.weight")
    if conv_in is None or conv_in.shape[1] == 9:
        return unet
    if conv_in.shape[1] == 4 and widen_conv_in:
        return dict(unet, **{"conv_in.weight": widen_conv_in_weight(conv_in)})
    raise CheckpointError(
        path, f"the U-Net has a {conv_in.shape[1]}-channel conv_in",
        looks_like="a text-to-image (non-inpainting) SD1.5 U-Net" if conv_in.shape[1] == 4 else None,
        expected=EXPECTED_UNET,
        hint="use an SD1.5 inpainting checkpoint (sd-v1-5-inpainting / 512-inpainting-ema), or pass "
             "widen_conv_in=True to zero-initialise the 5 extra input channels (needs fine-tuning)")


def convert_vae(tensors: dict[str, torch.Tensor], down_blocks: int = 4) -> tuple[dict[str, torch.Tensor], set[str]]:
    """LDM VAE (``first_stage_model.*`` or bare ``encoder.down...``) -> diffusers ``AutoencoderKL`` keys."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    cfg = {"down_block_types": ["DownEncoderBlock2D"] * down_blocks, "up_block_types": ["UpDecoderBlock2D"] * down_blocks}
    vae = convert_ldm_vae_checkpoint(tensors, cfg)
    return vae, consumed_keys(tensors, vae.values())


def _family_error(path, det: Detection, widen_conv_in: bool) -> None:
    if det.format == "sd15_inpainting_ldm" or (det.format == "sd15_ldm" and widen_conv_in):
        return
    if det.format == "sd15_ldm":
        return  # _maybe_widen raises the precise conv_in message
    raise CheckpointError(path, "not an SD1.5 inpainting checkpoint", looks_like=det.description,
                          expected=EXPECTED_UNET)


def read_sd15(path: str | os.PathLike, *, layers_per_block: int = 2, widen_conv_in: bool = False) -> SD15Weights:
    """Read an SD1.5 inpainting single file or diffusers folder into diffusers-named U-Net/VAE tensors."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return _read_diffusers_folder(path, widen_conv_in)
    wf = read_weights(path)
    tensors = unwrap(wf.tensors)
    det = detect(tensors, wf.metadata)
    if det.format == "diffusers_unet":
        unet = _maybe_widen(dict(tensors), path, widen_conv_in)
        return SD15Weights(path, det, unet, {})
    _family_error(path, det, widen_conv_in)
    unet, used_unet = convert_ldm_unet(tensors, layers_per_block, path=path, widen_conv_in=widen_conv_in)
    vae_src = {k: v for k, v in tensors.items() if k.startswith(LDM_VAE)}
    vae, used_vae = convert_vae(vae_src) if vae_src else ({}, set())
    not_used: dict[str, list[str]] = {}
    rest = [k for k in tensors if k not in used_unet and k not in used_vae]
    buckets = {
        "text encoder (DynaScene conditions on CLIP image embeddings)": lambda k: k.startswith(LDM_TEXT),
        "EMA copy (the file's main weights are used)": lambda k: k.startswith("model_ema."),
        "training schedule buffers (DynaScene uses its own schedule)": lambda k: k in _LDM_SCHEDULE_BUFFERS,
    }
    for reason, match in buckets.items():
        keys = [k for k in rest if match(k)]
        if keys:
            not_used[reason] = keys
    leftover = [k for k in rest if not any(k in v for v in not_used.values())]
    if leftover:
        raise CheckpointError(path, "has keys no converter accounts for", looks_like=det.description,
                              expected=EXPECTED_UNET + " + VAE + text encoder", unexpected=leftover)
    notes = ["conv_in widened 4 -> 9 channels, the 5 extra channels zero-initialised"] if det.format == "sd15_ldm" else []
    return SD15Weights(path, det, unet, vae, not_used, notes)


_LDM_SCHEDULE_BUFFERS = {
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "model_ema.decay", "model_ema.num_updates", "logvar",
}


def _folder_weights(folder: str) -> str:
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise CheckpointError(folder, "no diffusion_pytorch_model.safetensors or .bin in this folder")


def _read_diffusers_folder(path: str, widen_conv_in: bool) -> SD15Weights:
    unet_dir, vae_dir = os.path.join(path, "unet"), os.path.join(path, "vae")
    if not os.path.isdir(unet_dir):
        raise CheckpointError(path, "is a folder without a unet/ subfolder",
                              expected="a diffusers pipeline folder (unet/, vae/ with config.json)")
    cfg = read_json_config(os.path.join(unet_dir, "config.json"))
    if cfg.get("cross_attention_dim") != 768:
        raise CheckpointError(unet_dir, f"cross_attention_dim is {cfg.get('cross_attention_dim')}",
                              looks_like="not an SD1.5 U-Net (SD2 uses 1024, SDXL 2048)", expected=EXPECTED_UNET)
    weights = _folder_weights(unet_dir)
    unet = _maybe_widen(read_weights(weights).tensors, weights, widen_conv_in)
    vae = read_weights(_folder_weights(vae_dir)).tensors if os.path.isdir(vae_dir) else {}
    det = Detection("sd15_inpainting_diffusers", f"diffusers folder (U-Net with {cfg.get('in_channels')} input "
                    "channels)", ("denoiser_2d", "reference_net", "vae"))
    return SD15Weights(path, det, unet, vae)


def _is_2d(key: str) -> bool:
    return "motion_modules." not in key and ".processor." not in key


def load_sd15_inpainting(
    path: str | os.PathLike,
    *,
    denoiser_unet: torch.nn.Module | None = None,
    reference_unet: torch.nn.Module | None = None,
    vae: torch.nn.Module | None = None,
    widen_conv_in: bool = False,
) -> list[LoadReport]:
    """Load SD1.5 inpainting weights into the denoiser's 2D part, the ReferenceNet and/or a VAE.

    ``denoiser_unet`` is a ``UNetMotionModel`` (its motion modules and camera adaptor are left to the
    motion-module / DynaScene / CameraCtrl loaders), ``reference_unet`` a ``UNet2DConditionModel``,
    ``vae`` an ``AutoencoderKL`` (skipped, with no report, when the file holds no VAE). Returns one
    report per loaded target.
    """
    target_cfg = (denoiser_unet or reference_unet)
    layers = target_cfg.config.layers_per_block if target_cfg is not None else 2
    w = read_sd15(path, layers_per_block=layers, widen_conv_in=widen_conv_in)
    reports = []
    for name, module, tensors, scope in (("denoiser U-Net (2D part)", denoiser_unet, w.unet, _is_2d),
                                         ("ReferenceNet U-Net", reference_unet, w.unet, lambda k: True),
                                         ("VAE", vae, w.vae, lambda k: True)):
        if module is None:
            continue
        if not tensors:
            if module is vae:  # U-Net-only checkpoints are common; a missing VAE is reported by the caller
                continue
            raise CheckpointError(w.source, f"holds no {name} weights", looks_like=w.detection.description)
        if module is reference_unet and denoiser_unet is not None:
            tensors = {k: v.clone() for k, v in tensors.items()}  # its own memory: loaders may assign, not copy
        report = LoadReport(w.source, w.detection.format, name, not_used=w.not_used, notes=list(w.notes))
        reports.append(load_into(module, tensors, report, scope=scope))
    return reports


def load_vae(path: str | os.PathLike, vae: torch.nn.Module) -> LoadReport:
    """Load an SD VAE: diffusers folder/file, LDM-layout file (bare or ``first_stage_model.*``), or the
    VAE part of an SD1.5 single-file checkpoint."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = _folder_weights(os.path.join(path, "vae") if os.path.isdir(os.path.join(path, "vae")) else path)
    wf = read_weights(path)
    tensors = unwrap(wf.tensors)
    det = detect(tensors, wf.metadata)
    report = LoadReport(path, det.format, "VAE")
    if det.format == "vae_diffusers":
        return load_into(vae, tensors, report)
    if det.format not in ("vae_ldm", "sd15_inpainting_ldm", "sd15_ldm"):
        raise CheckpointError(path, "not a Stable Diffusion VAE", looks_like=det.description,
                              expected="sd-vae-ft-mse (diffusers or LDM layout) or an SD1.5 checkpoint")
    src = {k: v for k, v in tensors.items() if k.startswith(LDM_VAE)} or tensors
    converted, used = convert_vae(src, len(vae.config.down_block_types))
    others = [k for k in tensors if k not in src]
    if others:
        report.not_used["other networks in this file (U-Net, text encoder)"] = others
    leftover = [k for k in src if k not in used]
    if leftover:
        raise CheckpointError(path, "has VAE keys the converter does not account for", looks_like=det.description,
                              unexpected=leftover)
    return load_into(vae, converted, report)
