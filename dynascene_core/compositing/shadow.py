"""Contact shadow: the person's matte cast onto the ground behind their feet.

A planar approximation: each frame's silhouette is flipped about the foot line (the lowest matte
row), squashed to ``length`` of its height and sheared towards ``angle``, blurred, and darkens the
background by ``strength``. Enough to give the person contact with the ground; not a light model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .filters import gaussian_blur

MAX_ANGLE = 80.0
"""Shadow direction limit (degrees from straight down); at 90° the shadow would be infinitely long."""


def foot_rows(alpha: torch.Tensor, level: float = 0.5) -> torch.Tensor:
    """Lowest row index with ``alpha > level`` per frame ``(F,)`` (-1 where the frame has no person)."""
    rows = (alpha[:, 0] > level).any(dim=2)                                    # (F, H)
    index = torch.arange(rows.shape[1], device=alpha.device).expand_as(rows)
    return torch.where(rows, index, torch.full_like(index, -1)).amax(dim=1)


def shadow_matte(alpha: torch.Tensor, angle: float, length: float, softness: float) -> torch.Tensor:
    """Shadow coverage ``(F, 1, H, W)`` in [0, 1] from the matte ``(F, 1, H, W)``.

    A ground pixel ``(x, y)`` below the foot row ``y_f`` is shadowed by the silhouette point at
    ``y_src = y_f − (y − y_f) / (length · cos θ)``, ``x_src = x − (y − y_f) · tan θ`` (θ = ``angle`` in
    degrees, 0 = straight down the image, positive = to the right); then blurred by ``softness`` px.
    """
    if not -MAX_ANGLE <= angle <= MAX_ANGLE:
        raise ValueError(f"shadow angle must be within ±{MAX_ANGLE:g} degrees, got {angle}")
    if length <= 0:
        raise ValueError(f"shadow length must be > 0, got {length}")
    n, _, height, width = alpha.shape
    theta = math.radians(angle)
    feet = foot_rows(alpha).to(alpha.dtype).view(n, 1, 1)
    y = torch.arange(height, device=alpha.device, dtype=alpha.dtype).view(1, -1, 1)
    x = torch.arange(width, device=alpha.device, dtype=alpha.dtype).view(1, 1, -1)
    below = y - feet                                                             # (F, H, 1)
    y_src = (feet - below / (length * math.cos(theta))).expand(n, height, width)
    x_src = (x - below * math.tan(theta)).expand(n, height, width)
    grid = torch.stack([x_src / max(width - 1, 1) * 2 - 1, y_src / max(height - 1, 1) * 2 - 1], dim=-1)
    cast = F.grid_sample(alpha.float(), grid.float(), mode="bilinear", padding_mode="zeros", align_corners=True)
    has_person = (feet >= 0).view(n, 1, 1, 1)
    cast = cast * ((below >= 0).view(n, 1, height, 1)) * has_person
    return gaussian_blur(cast, softness).clamp(0, 1).to(alpha.dtype)


def cast_shadow(background: torch.Tensor, alpha: torch.Tensor, strength: float, angle: float, length: float,
                softness: float) -> torch.Tensor:
    """Darken ``background`` ``(F, 3, H, W)`` by ``strength × shadow_matte`` (multiplicative)."""
    if strength <= 0:
        return background
    return background * (1 - strength * shadow_matte(alpha, angle, length, softness))
