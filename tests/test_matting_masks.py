"""Mask tools on hand-made masks with known answers, and checking external masks."""

import numpy as np
import pytest
import torch

from dynascene_core.matting import (
    MattingInputError,
    dilate,
    erode,
    feather,
    fill_holes,
    human_removed_mask,
    remove_small_islands,
    temporal_average,
    temporal_ema,
    threshold,
    validate_mask,
)


def canvas(height=9, width=9, frames=1):
    return torch.zeros(frames, 1, height, width)


def test_threshold_keeps_layout():
    mask = torch.tensor([[[0.2, 0.5, 0.7]]])  # (F, H, W)
    assert threshold(mask).tolist() == [[[0.0, 1.0, 1.0]]]
    assert threshold(mask.unsqueeze(1), 0.6).shape == (1, 1, 1, 3)


def test_dilate_a_point_gives_a_disc():
    mask = canvas()
    mask[0, 0, 4, 4] = 1
    one = dilate(mask, 1)[0, 0]
    assert one.sum() == 5 and one[3, 4] == one[4, 3] == one[5, 4] == one[4, 5] == 1 and one[3, 3] == 0
    two = dilate(mask[:, 0], 2)  # (F, H, W) layout
    assert two.shape == (1, 9, 9)
    assert two.sum() == 17 and two[0, 2, 4] == two[0, 3, 3] == 1 and two[0, 2, 3] == 0  # OpenCV's 5x5 disc
    assert torch.equal(dilate(mask, 0), mask)


def test_dilate_keeps_soft_values_and_dtype():
    mask = canvas().double()
    mask[0, 0, 4, 4] = 0.25
    out = dilate(mask, 1)
    assert out.dtype == torch.float64 and out.max() == 0.25 and (out == 0.25).sum() == 5


def test_erode_shrinks_a_square_and_closing_restores_it():
    mask = canvas()
    mask[0, 0, 2:7, 2:7] = 1  # 5x5 square
    eroded = erode(mask, 1)
    expected = canvas()
    expected[0, 0, 3:6, 3:6] = 1
    assert torch.equal(eroded, expected)
    assert torch.equal(erode(dilate(mask, 1), 1), mask)
    assert torch.equal(erode(torch.ones(1, 1, 5, 5), 2), torch.ones(1, 1, 5, 5))  # the frame border does not erode


def test_feather_blurs_only_near_the_edge():
    mask = torch.zeros(1, 1, 5, 20)
    mask[..., 10:] = 1  # vertical step edge between columns 9 and 10
    out = feather(mask, 3)[0, 0]
    assert torch.allclose(out[:, 9] + out[:, 10], torch.ones(5), atol=1e-6)  # symmetric around the edge
    assert 0 < out[0, 9] < 0.5 < out[0, 10] < 1
    assert torch.all(out[:, :6] == 0) and torch.allclose(out[:, 14:], torch.ones(5, 6))  # beyond the radius
    assert torch.all(out[0, 1:] >= out[0, :-1] - 1e-6)  # monotone across the edge
    assert torch.equal(feather(mask, 0), mask)


def test_fill_holes_fills_enclosed_regions_only():
    mask = canvas(9, 12)
    mask[0, 0, 1:6, 1:6] = 1
    mask[0, 0, 3, 3] = 0  # a one-pixel hole in a closed square
    mask[0, 0, 2:4, 2:3] = 0.7  # soft but above the level: part of the mask
    mask[0, 0, 0:5, 7:11] = 1
    mask[0, 0, 0:3, 8:10] = 0  # a notch open to the top border: not a hole
    out = fill_holes(mask)
    assert out[0, 0, 3, 3] == 1 and out[0, 0, 2, 2] == pytest.approx(0.7)
    assert torch.all(out[0, 0, 0:3, 8:10] == 0)
    assert torch.all(out[0, 0, 6:] == 0)  # outside stays outside
    assert float(out.sum() - mask.sum()) == 1


def test_remove_small_islands_uses_area_and_8_connectivity():
    mask = canvas(10, 10)
    mask[0, 0, 1:6, 1:6] = 1  # area 25
    mask[0, 0, 8, 8] = mask[0, 0, 7, 7] = 0.9  # diagonal pair: one island of area 2
    mask[0, 0, 8, 1] = 1  # a single pixel
    out = remove_small_islands(mask, min_area=3)
    assert torch.equal(out[0, 0, 1:6, 1:6], torch.ones(5, 5))
    assert out[0, 0, 8, 8] == 0 and out[0, 0, 7, 7] == 0 and out[0, 0, 8, 1] == 0
    kept = remove_small_islands(mask, min_area=2)
    assert kept[0, 0, 8, 8] == pytest.approx(0.9) and kept[0, 0, 8, 1] == 0


def test_temporal_average_and_ema():
    series = torch.tensor([0.0, 0.0, 3.0, 0.0, 0.0]).view(5, 1, 1, 1).expand(5, 1, 2, 2).contiguous()
    assert temporal_average(series, 1)[:, 0, 0, 0].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    edge = torch.tensor([3.0, 0.0, 0.0]).view(3, 1, 1)  # (F, H, W): ends average fewer frames
    assert temporal_average(edge, 1)[:, 0, 0].tolist() == [1.5, 1.0, 0.0]
    ema = temporal_ema(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1), decay=0.5)
    assert ema[:, 0, 0].tolist() == [1.0, 0.5, 0.25]
    with pytest.raises(MattingInputError, match=r"decay must be in \[0, 1\), got 1"):
        temporal_ema(edge, 1)


def test_human_removed_mask_is_binary_and_grown():
    alpha = canvas()
    alpha[0, 0, 4, 4] = 0.9
    alpha[0, 0, 0, 0] = 0.3  # faint halo below the level: not the human
    out = human_removed_mask(alpha, dilation=1)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert out.sum() == 5 and out[0, 0, 0, 0] == 0


def test_radius_must_be_whole_pixels():
    with pytest.raises(MattingInputError, match="radius must be a whole number of pixels >= 0, got -1"):
        dilate(canvas(), -1)
    with pytest.raises(MattingInputError, match=r"expected shape \(F, 1, H, W\) or \(F, H, W\), got \(1, 2, 9, 9\)"):
        erode(torch.zeros(1, 2, 9, 9), 1)


def test_validate_mask_accepts_external_masks():
    frames = torch.rand(4, 3, 6, 10)
    comfy_mask = torch.rand(4, 6, 10)  # ComfyUI MASK layout
    out = validate_mask(comfy_mask, frames)
    assert out.shape == (4, 1, 6, 10) and torch.equal(out[:, 0], comfy_mask)
    assert validate_mask(np.ones((4, 1, 6, 10), np.float32), frames).shape == (4, 1, 6, 10)
    assert validate_mask(torch.ones(4, 6, 10, dtype=torch.bool), frames).dtype == torch.float32


@pytest.mark.parametrize("mask, message", [
    (torch.rand(3, 6, 10), r"mask: has 3 frames but the video has 4"),
    (torch.rand(4, 1, 6, 8), r"mask: is 8x6 \(W x H\) but the frames are 10x6"),
    (torch.rand(4, 7, 10), r"mask: is 10x7 \(W x H\) but the frames are 10x6"),
    (torch.rand(4, 6, 10) * 2, r"values must be in \[0, 1\]"),
    (torch.full((4, 6, 10), float("nan")), r"values must be in \[0, 1\], got \[nan"),
    (torch.zeros(4, 6, 10, dtype=torch.uint8), r"got dtype torch.uint8 \(uint8 masks: divide by 255\)"),
    (torch.rand(4, 3, 6, 10), r"expected shape \(F, 1, H, W\) or \(F, H, W\), got \(4, 3, 6, 10\)"),
])
def test_validate_mask_rejects_mismatches(mask, message):
    with pytest.raises(MattingInputError, match=message):
        validate_mask(mask, torch.rand(4, 3, 6, 10))
