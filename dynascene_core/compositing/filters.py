"""Separable Gaussian blur on ``(N, C, H, W)`` tensors, on whatever device they live (CPU or GPU).

OpenCV's blur (used for mask feathering) is CPU/numpy only; the compositing steps that run per
frame inside a GPU pipeline (light wrap, contact shadow) use this one instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian taps over ``±ceil(3·sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``(N, C, H, W)`` with a Gaussian of ``sigma`` pixels, replicating the frame border.

    ``sigma <= 0`` returns the input unchanged. Two 1-D passes: cost grows with ``sigma``, not its square.
    """
    if sigma <= 0:
        return images
    taps = gaussian_kernel(sigma, images.device, images.dtype)
    radius = len(taps) // 2
    channels = images.shape[1]
    out = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
