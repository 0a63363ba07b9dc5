"""CLIP image conditioning: the projected CLIP ViT-L/14 image embedding as one cross-attention token."""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from ..conditioning import resize_cover_crop

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_preprocess(images: torch.Tensor, size: int = 224) -> torch.Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, size, size)`` normalised for CLIP.

    Short side resized to ``size`` and centre-cropped (:func:`resize_cover_crop`), clamped to [0, 1]
    (CLIP's own preprocessing works on 8-bit images), CLIP mean/std.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"clip_preprocess expects images (B, 3, H, W) in [0, 1], got {tuple(images.shape)}")
    x = resize_cover_crop(images.float(), size, size).clamp(0, 1)
    mean = x.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class ImageEncoder(nn.Module):
    """``forward(images (B,3,H,W) in [0,1]) -> image_embeds (B, 1, projection_dim)``.

    ``self.model`` is transformers' ``CLIPVisionModelWithProjection`` (ViT-L/14, 768-d projection
    in the ``sd15`` config).
    """

    def __init__(self, clip_vision_config: dict):
        super().__init__()
        self.model = CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_vision_config))
        self.image_size = self.model.config.image_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = clip_preprocess(images.to(self.model.device), self.image_size).to(self.model.dtype)
        return self.model(pixel_values=pixels).image_embeds.unsqueeze(1)


def zero_image_embeds_like(image_embeds: torch.Tensor) -> torch.Tensor:
    """The unconditional branch's CLIP token: zeros of the same shape (DESIGN.md §4)."""
    return torch.zeros_like(image_embeds)
