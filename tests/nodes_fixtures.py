"""Test-only stand-ins for the host's VAE and CLIP_VISION objects over the tiny models, and model folders.

They expose exactly the host interface the pack's nodes use: ``vae.encode(pixels (B, H, W, 3))`` ->
UNSCALED latents, ``vae.decode(latents)`` -> ``(B, H, W, 3)`` in [0, 1], ``vae.latent_channels``;
``clip_vision.encode_image(image (B, H, W, 3)).image_embeds`` -> ``(B, D)``.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import torch


class TinyHostVAE:
    latent_channels = 4

    def __init__(self, vae):
        self.vae = vae

    @torch.no_grad()
    def encode(self, pixels):
        return self.vae.encode(pixels.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mean

    @torch.no_grad()
    def decode(self, latents):
        return ((self.vae.decode(latents).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)


class TinyHostCLIPVision:
    def __init__(self, image_encoder):
        self.image_encoder = image_encoder

    @torch.no_grad()
    def encode_image(self, image):
        embeds = self.image_encoder(image.permute(0, 3, 1, 2))
        return SimpleNamespace(image_embeds=embeds.reshape(len(image), -1))


def standalone_dirs(tmp_path, monkeypatch) -> dict:
    """Point the host shim's standalone folders (input/output/temp/models) into ``tmp_path``."""
    from nodes import host

    dirs = {name: str(tmp_path / name) for name in ("input", "output", "temp", "models")}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    monkeypatch.setattr(host, "STANDALONE_DIRS", dirs)
    return dirs


def model_folder(dirs: dict, name: str) -> str:
    path = os.path.join(dirs["models"], name)
    os.makedirs(path, exist_ok=True)
    return path
