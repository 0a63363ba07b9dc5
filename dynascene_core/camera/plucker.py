"""Plücker ray embedding of a camera trajectory (``DESIGN.md`` §3, identical to CameraCtrl's ``ray_condition``)."""

from __future__ import annotations

from typing import Callable

import torch

from .trajectory import CameraTrajectory


def plucker_embedding(trajectory: CameraTrajectory, height: int, width: int, device=None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-pixel Plücker rays ``(F, 6, H, W)``, channels ``[o×d (3), d (3)]``.

    Pixel centres ``u = i + 0.5`` (column), ``v = j + 0.5`` (row); pixel intrinsics are the trajectory's
    normalised ones × (W, H, W, H); ``d = R_c2w · normalize(((u−cx)/fx, (v−cy)/fy, 1))``; ``o`` is the
    camera centre. Computed in float64 and cast to ``dtype``. Pass relative poses (``relative_to``) to get
    the usual reference-frame embedding, whose moment channels are 0.
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height}x{width}")
    c2w = trajectory.c2w.to(device=device, dtype=torch.float64)
    fx, fy, cx, cy = trajectory.intrinsics_pixels(height, width).to(device).unbind(-1)  # (F,) each
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float64) + 0.5,
                          torch.arange(width, device=device, dtype=torch.float64) + 0.5, indexing="ij")
    x = (u[None] - cx[:, None, None]) / fx[:, None, None]  # (F, H, W)
    y = (v[None] - cy[:, None, None]) / fy[:, None, None]
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    d_cam = d_cam / d_cam.norm(dim=-1, keepdim=True)
    d = torch.einsum("fij,fhwj->fhwi", c2w[:, :3, :3], d_cam)  # (F, H, W, 3)
    o = c2w[:, None, None, :3, 3].expand_as(d)
    moment = torch.cross(o, d, dim=-1)  # dim=-1 matters when F or H is 3
    return torch.cat([moment, d], dim=-1).permute(0, 3, 1, 2).to(dtype).contiguous()


def relative_cameras(trajectory: CameraTrajectory, reference_frame: int, height: int, width: int
                     ) -> CameraTrajectory:
    """The cameras the camera encoder sees: every pose relative to the scene image's camera
    (``reference_frame``) and intrinsics fitted to ``height × width`` with square pixels
    (:meth:`CameraTrajectory.fit_aspect`). Shared by training and inference."""
    if not 0 <= reference_frame < len(trajectory):
        raise ValueError(f"reference frame {reference_frame} is outside the trajectory's frames 0..{len(trajectory) - 1}")
    return trajectory.fit_aspect(width, height).relative_to(reference_frame)


def camera_condition(trajectory: CameraTrajectory, height: int, width: int, reference_frame: int = 0
                     ) -> Callable[..., torch.Tensor]:
    """``(frames, device=None) -> (len(frames), 6, H, W)`` float32: Plücker embeddings of
    :func:`relative_cameras` for any frame indices (a context window's ``range``, or a training clip's
    sampled frames), computed on ``device`` (default CPU)."""
    relative = relative_cameras(trajectory, reference_frame, height, width)
    return lambda frames, device=None: plucker_embedding(relative[list(frames)], height, width, device=device)


def plucker_to_rgb(embedding: torch.Tensor) -> torch.Tensor:
    """Visualise a Plücker embedding ``(F, 6, H, W)`` as images ``(F, 3, H, 2W)`` in [0, 1]: ray
    directions on the left (``d·0.5 + 0.5``: x→red, y→green, z→blue) and moments ``o×d`` on the right,
    scaled by the largest moment of the whole clip so motion over time stays comparable (the
    reference frame's moments are 0, mid-grey)."""
    moment, direction = embedding[:, :3], embedding[:, 3:]
    scale = moment.abs().amax().clamp_min(1e-8)
    return torch.cat([direction * 0.5 + 0.5, moment / scale * 0.5 + 0.5], dim=-1).clamp(0, 1)
