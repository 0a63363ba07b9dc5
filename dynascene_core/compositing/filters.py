"""Separable Gaussian blur of ``(N, C, H, W)`` tensors on their own device.

On the CPU OpenCV's blur is used (about twenty times faster than torch's depthwise convolution
there); on a GPU two 1-D convolutions. Both use the same taps, ``exp(−x²/2σ²)`` over ``±ceil(3σ)``
normalised (OpenCV's ``getGaussianKernel`` for that size and sigma), and replicate the frame border.
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


def _blur_cpu(images: torch.Tensor, sigma: float, size: int) -> torch.Tensor:
    """OpenCV's Gaussian blur on each ``(H, W)`` plane, written straight into the output tensor."""
    import cv2

    planes = images.float().contiguous()
    out = torch.empty_like(planes)
    for src, dst in zip(planes.view(-1, *planes.shape[2:]).numpy(), out.view(-1, *planes.shape[2:]).numpy()):
        cv2.GaussianBlur(src, (size, size), sigma, dst=dst, borderType=cv2.BORDER_REPLICATE)
    return out.to(images.dtype)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``(N, C, H, W)`` with a Gaussian of ``sigma`` pixels, replicating the frame border.

    ``sigma <= 0`` returns the input unchanged.
    """
    if sigma <= 0:
        return images
    taps = gaussian_kernel(sigma, images.device, images.dtype)
    if images.device.type == "cpu":
        return _blur_cpu(images, sigma, len(taps))
    return _blur_conv(images, taps)


def _blur_conv(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Two depthwise 1-D convolutions (the GPU path)."""
    radius = len(taps) // 2
    channels = images.shape[1]
    out = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
