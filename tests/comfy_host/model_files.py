"""Model and input files for running the shipped workflows in a real ComfyUI (random weights, no downloads).

Names match the shipped workflows (``workflows/api/*.json``). The host's own loaders need full-size
files in a layout they detect: ComfyUI's ``VAELoader`` takes diffusers ``AutoencoderKL`` keys (converted
in ``comfy/sd.py``) and ``CLIPVisionLoader`` takes transformers ``CLIPVisionModelWithProjection`` keys
(ViT-L/14 detected by its 24 layers and 257 positions, ``comfy/clip_vision.py``). They are built on the
meta device and filled with random fp16 values (norm weights 1, biases 0, other tensors scaled by
1/sqrt(fan-in)), which is fast and keeps activations finite.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

INTERRUPT_VIDEO = "dynascene_interrupt_example.mp4"
VIDEO_FRAMES = {"dynascene_example.mp4": 12, "dynascene_long_example.mp4": 20, INTERRUPT_VIDEO: 96}
VIDEO_SIZE = (64, 64)  # (height, width): divisible by 8
FILES = {
    "dynascene": "dynascene.safetensors",
    "rvm": "rvm_mobilenetv3.pth",
    "vae": "vae-ft-mse-840000-ema-pruned.safetensors",
    "clip_vision": "clip_vit_large_patch14.safetensors",
}


def _random_like_meta(module: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    out = {}
    for name, tensor in module.state_dict().items():
        if tensor.ndim == 1 and "norm" in name and name.endswith("weight"):
            value = torch.ones(tensor.shape)
        elif tensor.ndim == 1 or not tensor.is_floating_point():
            value = torch.zeros(tensor.shape, dtype=tensor.dtype if not tensor.is_floating_point() else None)
        else:
            fan_in = math.prod(tensor.shape[1:])
            value = torch.randn(tensor.shape, generator=generator) / math.sqrt(fan_in)
        out[name] = value.half() if value.is_floating_point() else value
    return out


def sd_vae_state_dict(generator: torch.Generator) -> dict[str, torch.Tensor]:
    from diffusers import AutoencoderKL

    from dynascene_core.models.config import SD15_VAE

    with torch.device("meta"):
        vae = AutoencoderKL(**SD15_VAE)
    return _random_like_meta(vae, generator)


def clip_vit_l_state_dict(generator: torch.Generator) -> dict[str, torch.Tensor]:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from dynascene_core.models.config import SD15_CLIP_VISION

    with torch.device("meta"):
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**SD15_CLIP_VISION))
    tensors = _random_like_meta(model, generator)
    tensors.pop("vision_model.embeddings.position_ids", None)  # a buffer, not a weight
    return tensors


def write_model_files(models_dir: str) -> dict[str, str]:
    """Write every model file the shipped workflows load into ``<models_dir>/<folder>/``; returns the paths."""
    from dynascene_core.checkpoints import save_dynascene
    from dynascene_core.matting import RobustVideoMatting
    from dynascene_core.models import DynaSceneModels

    generator = torch.Generator().manual_seed(0)
    paths = {folder: os.path.join(models_dir, folder, name) for folder, name in FILES.items()}
    for path in paths.values():
        os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.manual_seed(0)
    save_dynascene(paths["dynascene"], DynaSceneModels.build("tiny768"))
    torch.save(RobustVideoMatting("mobilenetv3").state_dict(), paths["rvm"])
    save_file(sd_vae_state_dict(generator), paths["vae"])
    save_file(clip_vit_l_state_dict(generator), paths["clip_vision"])
    return paths


def write_input_files(input_dir: str) -> None:
    """Synthetic demo clips (a moving actor in a textured scene, camera orbiting) and a scene image."""
    from dynascene_core.camera import demo_clip
    from dynascene_core.video import write_video

    os.makedirs(input_dir, exist_ok=True)
    for name, frames in VIDEO_FRAMES.items():
        clip = demo_clip(frames, *VIDEO_SIZE)
        write_video(os.path.join(input_dir, name), clip.frames, fps=12)
    scene = demo_clip(2, 96, 128, seed=3, actor=False).scene_image
    Image.fromarray(np.ascontiguousarray(scene)).save(os.path.join(input_dir, "dynascene_scene.png"))
