"""Per-frame pixel metrics (L1, PSNR, SSIM), optionally on the background only.

Frames are ``(F, 3, H, W)`` float tensors in ``[0, 1]``. ``weights`` is ``(F, 1, H, W)`` in ``[0, 1]``: how
much each pixel counts (``1 - alpha`` of the human matte for background-only metrics; ``None`` = every
pixel counts fully). The mean over pixels becomes a weighted mean:

* L1 = Σ w·|g − t| / (3·Σ w), on the [0, 1] scale;
* PSNR = 10·log10(1 / MSE) with MSE = Σ w·(g − t)² / (3·Σ w) (peak 1; MSE floored at 1e-10, so identical
  frames give 100 dB instead of infinity);
* SSIM: torchmetrics' SSIM map (Gaussian window 11, σ 1.5, the paper's usual setting) averaged with the
  weights. Windows near the person see human pixels; the evaluation fills the generated frame's human
  region with the ground truth first (:func:`fill_foreground`), so those pixels agree in both.
"""

from __future__ import annotations

import torch

PSNR_MSE_FLOOR = 1e-10


def fill_foreground(generated: torch.Tensor, ground_truth: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``generated`` with the human region (``alpha`` ``(F, 1, H, W)``, 1 = human) replaced by the ground
    truth: ``g·(1 − α) + t·α``. Both sets then hold the same person, so set-level and perceptual metrics
    compare backgrounds only."""
    return generated * (1 - alpha) + ground_truth * alpha


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Per-frame mean of ``(F, C, H, W)`` values with ``(F, 1, H, W)`` weights (``None``: plain mean)."""
    if weights is None:
        return values.mean(dim=(1, 2, 3))
    weights = weights.expand_as(values)
    total = weights.sum(dim=(1, 2, 3))
    if bool((total <= 0).any()):
        empty = torch.nonzero(total <= 0).flatten().tolist()
        raise ValueError(f"no background pixels in frames {empty} (the mask covers the whole frame)")
    return (values * weights).sum(dim=(1, 2, 3)) / total


def _check(generated: torch.Tensor, ground_truth: torch.Tensor, weights: torch.Tensor | None) -> None:
    if generated.shape != ground_truth.shape or generated.ndim != 4 or generated.shape[1] != 3:
        raise ValueError(f"expected two (F, 3, H, W) tensors of one shape, got {tuple(generated.shape)} "
                         f"and {tuple(ground_truth.shape)}")
    if weights is not None and weights.shape != (generated.shape[0], 1, *generated.shape[2:]):
        raise ValueError(f"weights must be (F, 1, H, W) = {(generated.shape[0], 1, *generated.shape[2:])}, "
                         f"got {tuple(weights.shape)}")


def l1_per_frame(generated: torch.Tensor, ground_truth: torch.Tensor,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per frame ``(F,)`` on the [0, 1] scale (weighted by ``weights``)."""
    _check(generated, ground_truth, weights)
    return _weighted_mean((generated - ground_truth).abs(), weights)


def psnr_per_frame(generated: torch.Tensor, ground_truth: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
    """PSNR in dB per frame ``(F,)``, peak 1 (weighted MSE)."""
    _check(generated, ground_truth, weights)
    mse = _weighted_mean((generated - ground_truth).square(), weights)
    return -10 * torch.log10(mse.clamp_min(PSNR_MSE_FLOOR))


def ssim_per_frame(generated: torch.Tensor, ground_truth: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
    """SSIM per frame ``(F,)``: torchmetrics' SSIM map, averaged with ``weights``."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _check(generated, ground_truth, weights)
    _, ssim_map = structural_similarity_index_measure(
        generated.float(), ground_truth.float(), data_range=1.0, reduction="none", return_full_image=True)
    return _weighted_mean(ssim_map, weights)
