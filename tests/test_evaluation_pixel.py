"""Pixel metrics (L1, PSNR, SSIM), background-only weighting, and the in-memory evaluation API."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dynascene_core.evaluation import (EvalClip, EvaluationInputError, evaluate_clips, fill_foreground,
                                       l1_per_frame, psnr_per_frame, ssim_per_frame)


def _pair(frames=3, height=40, width=56, noise=0.15, seed=0):
    g = torch.Generator().manual_seed(seed)
    truth = torch.rand(frames, 3, height, width, generator=g)
    generated = (truth + noise * torch.randn(frames, 3, height, width, generator=g)).clamp(0, 1)
    return generated, truth


def _hwc(frame):
    return frame.permute(1, 2, 0).double().numpy()


def test_psnr_matches_scikit_image():
    generated, truth = _pair()
    ours = psnr_per_frame(generated, truth)
    for i in range(len(truth)):
        assert ours[i].item() == pytest.approx(peak_signal_noise_ratio(_hwc(truth[i]), _hwc(generated[i]),
                                                                       data_range=1.0), abs=1e-4)


def test_ssim_matches_scikit_image():
    generated, truth = _pair()
    ours = ssim_per_frame(generated, truth)
    # scikit-image leaves out the 5-pixel border its 11x11 window cannot cover; weighting those pixels 0
    # must give its value exactly, and the full-frame value differs only by the border.
    border = torch.zeros(len(truth), 1, *truth.shape[2:])
    border[..., 5:-5, 5:-5] = 1
    interior = ssim_per_frame(generated, truth, border)
    for i in range(len(truth)):
        reference = structural_similarity(_hwc(truth[i]), _hwc(generated[i]), gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=1.0, channel_axis=2)
        assert interior[i].item() == pytest.approx(reference, abs=1e-5)
        assert ours[i].item() == pytest.approx(reference, abs=5e-3)
    assert ssim_per_frame(truth, truth).allclose(torch.ones(len(truth)), atol=1e-5)


def test_background_only_metrics_by_hand():
    truth = torch.full((2, 3, 8, 10), 0.5)
    generated = truth.clone()
    alpha = torch.zeros(2, 1, 8, 10)
    alpha[:, :, 2:6, 3:7] = 1  # the person: 16 of 80 pixels
    generated += 0.1  # background off by 0.1 ...
    generated[:, :, 2:6, 3:7] = 1.0  # ... the person off by 0.5
    weights = 1 - alpha
    assert l1_per_frame(generated, truth, weights).allclose(torch.full((2,), 0.1))
    assert l1_per_frame(generated, truth).allclose(torch.full((2,), (64 * 0.1 + 16 * 0.5) / 80))
    assert psnr_per_frame(generated, truth, weights).allclose(torch.full((2,), 20.0))  # MSE 0.01
    unmasked_mse = (64 * 0.01 + 16 * 0.25) / 80
    assert psnr_per_frame(generated, truth).allclose(torch.full((2,), -10 * math.log10(unmasked_mse)))


def test_soft_weights_are_a_weighted_mean():
    generated, truth = _pair(frames=2, height=12, width=16)
    weights = torch.rand(2, 1, 12, 16, generator=torch.Generator().manual_seed(1))
    diff = (generated - truth).double().numpy()
    w = np.broadcast_to(weights.double().numpy(), diff.shape)
    l1 = (np.abs(diff) * w).sum((1, 2, 3)) / w.sum((1, 2, 3))
    mse = (diff ** 2 * w).sum((1, 2, 3)) / w.sum((1, 2, 3))
    assert np.allclose(l1_per_frame(generated, truth, weights).numpy(), l1, atol=1e-6)
    assert np.allclose(psnr_per_frame(generated, truth, weights).numpy(), -10 * np.log10(mse), atol=1e-4)


def test_fill_foreground_and_full_mask_error():
    generated, truth = _pair(frames=1, height=6, width=6)
    alpha = torch.zeros(1, 1, 6, 6)
    assert torch.equal(fill_foreground(generated, truth, alpha), generated)
    assert torch.allclose(fill_foreground(generated, truth, alpha + 1), truth)
    with pytest.raises(ValueError, match="no background pixels in frames \\[0\\]"):
        l1_per_frame(generated, truth, alpha)


def _u8(frames):
    return (frames.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def test_evaluate_clips_background_only_on_and_off():
    _, truth = _pair(frames=4, height=32, width=48)
    generated = truth.clone()
    generated[:, :, 8:24, 16:32] = 1 - generated[:, :, 8:24, 16:32]  # only the person region differs
    alpha = np.zeros((4, 32, 48), np.float32)
    alpha[:, 8:24, 16:32] = 1
    pixel = ["l1", "psnr", "ssim"]
    on = evaluate_clips([EvalClip("a", _u8(generated), _u8(truth), alpha)], pixel)
    off = evaluate_clips([EvalClip("a", _u8(generated), _u8(truth))], pixel)
    assert on.metrics["l1"] == 0 and on.metrics["psnr"] == pytest.approx(100.0)
    assert on.metrics["ssim"] == pytest.approx(1.0, abs=1e-5) and on.settings["background_only"]
    assert off.metrics["l1"] > 0.05 and off.metrics["psnr"] < 20 and off.metrics["ssim"] < 0.95
    assert set(on.metrics) == set(pixel) and on.skipped == {}


def test_frame_means_over_the_whole_set():
    a_gen, a_gt = _pair(frames=2, seed=1)
    b_gen, b_gt = _pair(frames=4, seed=2, noise=0.3)
    report = evaluate_clips([EvalClip("a", _u8(a_gen), _u8(a_gt)), EvalClip("b", _u8(b_gen), _u8(b_gt))], ["l1"])
    from dynascene_core.video import to_tensor

    per_frame = torch.cat([l1_per_frame(to_tensor(_u8(g)), to_tensor(_u8(t))) for g, t in ((a_gen, a_gt), (b_gen, b_gt))])
    assert report.metrics["l1"] == pytest.approx(per_frame.mean().item(), rel=1e-6)
    assert report.per_clip["b"]["frames"] == 4 and report.num_frames == 6


def test_eval_clip_errors_name_the_clip():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(EvaluationInputError, match="clip 'x': generated has 3 frames, ground truth 2"):
        EvalClip("x", frames, frames[:2])
    with pytest.raises(EvaluationInputError, match="clip 'x': generated frames are 8x8, ground truth 6x8"):
        EvalClip("x", frames, np.zeros((3, 8, 6, 3), np.uint8))
    with pytest.raises(EvaluationInputError, match="clip 'x': mask"):
        EvalClip("x", frames, frames, alpha=np.zeros((2, 8, 8)))
    with pytest.raises(EvaluationInputError, match="clip 'x': the mask covers the whole frame .* in frames \\[1\\]"):
        EvalClip("x", frames, frames, alpha=np.stack([np.zeros((8, 8)), np.ones((8, 8)), np.eye(8)]))
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_clips([EvalClip("x", frames, frames)], ["psnr", "iou"])
