"""The matte-aware composite: the person's own colour at the edges, harmonized, light-wrapped, with
an optional contact shadow — one function used by the sampler, the CLI, the nodes and training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .edges import estimate_foreground, light_wrap, spread_foreground
from .harmonize import apply_gains, harmonization_gains
from .shadow import MAX_ANGLE, cast_shadow

CHUNK = 16
"""Frames composited at a time (bounds memory for long videos; gains are computed over all frames first)."""
WRAP_SIGMA = 0.01
"""Light-wrap blur, as a fraction of the frame's short side (4 px at 432)."""
SHADOW_SOFTNESS = 0.015
"""Contact-shadow blur, as a fraction of the frame's short side."""


@dataclass
class CompositeSettings:
    """What a user tunes. The defaults are the matte-aware composite with light harmonization."""

    feather: int = 0
    """Edge softness: radius (pixels) over which the matte edge is softened (Refine Mask's unit)."""
    light_wrap: float = 0.2
    """Wrap strength in [0, 1]: how much of the blurred new background spills over the person's edge."""
    harmonize: float = 0.7
    """Harmonization strength in [0, 1]: fraction of the surroundings' exposure/colour change applied to the person."""
    harmonize_radius: int = 8
    """Harmonization gains are averaged over ``2·radius + 1`` frames (no flicker)."""
    shadow: float = 0.0
    """Contact-shadow strength in [0, 1]; 0 = off."""
    shadow_angle: float = 30.0
    """Shadow direction in degrees from straight down the image (positive = to the right), within ±80."""
    shadow_length: float = 0.35
    """Shadow length as a fraction of the person's height."""

    def validate(self) -> None:
        for name in ("light_wrap", "harmonize", "shadow"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"composite {name} must be in [0, 1], got {value}")
        if self.feather < 0 or self.harmonize_radius < 0:
            raise ValueError(f"composite feather and harmonize_radius must be >= 0, got {self.feather} and "
                             f"{self.harmonize_radius}")
        if abs(self.shadow_angle) > MAX_ANGLE:
            raise ValueError(f"composite shadow_angle must be within ±{MAX_ANGLE:g} degrees, got {self.shadow_angle}")
        if self.shadow_length <= 0:
            raise ValueError(f"composite shadow_length must be > 0, got {self.shadow_length}")


def _check_shapes(frames: torch.Tensor, background: torch.Tensor, alpha: torch.Tensor,
                  foreground: torch.Tensor | None) -> None:
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"composite: frames must be (F, 3, H, W), got {tuple(frames.shape)}")
    if background.shape != frames.shape:
        raise ValueError(f"composite: background {tuple(background.shape)} differs from frames {tuple(frames.shape)}")
    if alpha.shape != (frames.shape[0], 1, *frames.shape[2:]):
        raise ValueError(f"composite: mask must be {(frames.shape[0], 1, *frames.shape[2:])}, got {tuple(alpha.shape)}")
    if foreground is not None and foreground.shape != frames.shape:
        raise ValueError(f"composite: foreground colour {tuple(foreground.shape)} differs from frames "
                         f"{tuple(frames.shape)}")


def composite(frames: torch.Tensor, background: torch.Tensor, alpha: torch.Tensor,
              foreground: torch.Tensor | None = None,
              settings: CompositeSettings = CompositeSettings()) -> torch.Tensor:
    """The person over a new background, ``(F, 3, H, W)`` in [0, 1].

    Args:
        frames: ``(F, 3, H, W)`` the source video (person over the old background) in [0, 1].
        background: ``(F, 3, H, W)`` the new background.
        alpha: ``(F, 1, H, W)`` person matte (1 = person).
        foreground: ``(F, 3, H, W)`` the person's colour where ``alpha > 0`` (Robust Video Matting's
            ``fgr``); ``None`` estimates it from ``frames`` and ``alpha`` (:func:`estimate_foreground`).
        settings: edge softness, light wrap, harmonization and shadow controls.

    Steps: foreground colour (spread outwards when feathering) → gains from the change of the person's
    surroundings, smoothed over time → light wrap → ``α·F + (1 − α)·background`` with the shadow cast
    on the background.
    """
    settings.validate()
    _check_shapes(frames, background, alpha, foreground)
    frames, background, alpha = frames.float(), background.float(), alpha.float()
    soft = alpha
    if settings.feather:
        from ..matting.masks import feather

        soft = feather(alpha.cpu(), settings.feather).to(alpha.device)
    gains = None
    if settings.harmonize > 0:
        gains = harmonization_gains(frames, soft, background, settings.harmonize, settings.harmonize_radius)
    short_side = min(frames.shape[-2:])
    out = []
    for start in range(0, len(frames), CHUNK):
        part = slice(start, start + CHUNK)
        a, back = soft[part], background[part]
        fg = foreground[part].float() if foreground is not None else estimate_foreground(frames[part], alpha[part])
        if settings.feather:
            fg = spread_foreground(fg, alpha[part], 2 * settings.feather)
        if gains is not None:
            fg = apply_gains(fg, gains[part])
        fg = light_wrap(fg, a, back, settings.light_wrap, WRAP_SIGMA * short_side)
        back = cast_shadow(back, a, settings.shadow, settings.shadow_angle, settings.shadow_length,
                           SHADOW_SOFTNESS * short_side)
        out.append((a * fg + (1 - a) * back).clamp_(0, 1))
    return torch.cat(out)
