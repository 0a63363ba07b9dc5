"""The matte-aware composite: edges without old-background colour, light wrap, harmonization without
flicker, contact shadow — each checked against values written out by hand."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dynascene_core.compositing import (CompositeSettings, composite, estimate_foreground, frame_log_gains,
                                        harmonization_gains, light_wrap, shadow_matte)
from dynascene_core.compositing.harmonize import MAX_LOG_GAIN

NEUTRAL = CompositeSettings(light_wrap=0.0, harmonize=0.0)
RED, GREEN = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
PERSON = torch.tensor([0.0, 0.35, 0.9])  # no red at all: any red in the result is old background


def _plain(colour, n, h, w):
    return colour.view(1, 3, 1, 1).expand(n, 3, h, w).clone()


def soft_clip(n=3, h=48, w=64):
    """A disc with a 6-pixel soft edge (as hair or motion blur), filmed over red; the new background is green."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    radius = torch.sqrt((y - h / 2) ** 2 + (x - w / 2) ** 2)
    alpha = ((16 - radius) / 6 + 0.5).clamp(0, 1).expand(n, 1, h, w).clone()
    person = _plain(PERSON, n, h, w)
    frames = alpha * person + (1 - alpha) * _plain(RED, n, h, w)
    return frames, alpha, person, _plain(GREEN, n, h, w)


def edge_band_red(out, alpha):
    band = ((alpha > 0.05) & (alpha < 0.95)).expand_as(out[:, :1])
    return float(out[:, :1][band].max())


def test_matting_colour_leaves_no_red_in_the_edge_band_and_the_naive_paste_does():
    frames, alpha, person, green = soft_clip()
    naive = alpha * frames + (1 - alpha) * green
    assert edge_band_red(naive, alpha) > 0.2                         # α(1−α) of red, up to 0.25
    with_fgr = composite(frames, green, alpha, person, NEUTRAL)
    assert edge_band_red(with_fgr, alpha) == 0.0
    torch.testing.assert_close(with_fgr, alpha * person + (1 - alpha) * green)
    assert edge_band_red(composite(frames, green, alpha, person), alpha) < 0.02      # defaults (wrap, harmonize)
    estimated = composite(frames, green, alpha, settings=NEUTRAL)    # no fgr: estimated from frames and alpha
    assert edge_band_red(estimated, alpha) < 0.05


def test_estimated_foreground_recovers_the_person_colour_in_the_soft_edge():
    frames, alpha, person, _ = soft_clip(n=1)
    estimate = estimate_foreground(frames, alpha)
    band = ((alpha > 0.05) & (alpha < 0.95)).expand_as(estimate)
    assert float((estimate - person).abs()[band].max()) < 0.05


def test_feathering_does_not_bring_back_the_old_background():
    frames, alpha, person, green = soft_clip()
    fgr = torch.where(alpha > 0, person, _plain(RED, *alpha.shape[:1], *alpha.shape[2:]))  # RVM-like: old bg outside
    out = composite(frames, green, alpha, fgr, CompositeSettings(feather=4, light_wrap=0.0, harmonize=0.0))
    outside = (alpha == 0).expand_as(out[:, :1])
    assert float(out[:, :1][outside].max()) < 0.02
    assert float((out - green).abs()[:, :, :2].max()) == 0.0          # far from the person: the new background


def _gauss_taps(sigma):
    radius = math.ceil(3 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum(), radius


def test_light_wrap_mixes_the_background_into_the_edge_by_hand_computed_weights():
    h, w, edge, sigma, strength = 8, 40, 20, 2.0, 0.6
    alpha = torch.zeros(1, 1, h, w)
    alpha[..., edge:] = 1                                             # person on the right half
    grey, red = torch.tensor([0.2, 0.2, 0.2]), torch.tensor([1.0, 0.0, 0.0])
    fg, bg = _plain(grey, 1, h, w), _plain(red, 1, h, w)
    assert torch.equal(light_wrap(fg, alpha, bg, 0.0, sigma), fg)   # off: untouched
    out = light_wrap(fg, alpha, bg, strength, sigma)
    taps, radius = _gauss_taps(sigma)
    for j in range(0, radius + 2):                                    # j pixels inside the person
        surrounding = taps[: max(0, radius - j)].sum()                # taps that land on background
        weight = strength * surrounding
        want = (1 - weight) * grey + weight * red
        torch.testing.assert_close(out[0, :, 4, edge + j], want.float(), atol=1e-5, rtol=0)
    assert torch.equal(out[..., :edge], fg[..., :edge])              # α = 0: weight 0
    # inside the composite (blur: WRAP_SIGMA of the short side, 2 px here): on changes the edge, off leaves
    # α·F + (1 − α)·B
    alpha = torch.zeros(1, 1, 200, 200)
    alpha[..., edge:] = 1
    fg, bg = _plain(grey, 1, 200, 200), _plain(red, 1, 200, 200)
    off = composite(fg, bg, alpha, fg, NEUTRAL)
    on = composite(fg, bg, alpha, fg, CompositeSettings(light_wrap=0.5, harmonize=0.0))
    torch.testing.assert_close(off, alpha * fg + (1 - alpha) * bg)
    assert float(on[0, 0, 100, edge]) > float(off[0, 0, 100, edge]) + 0.05
    assert torch.equal(on[..., edge + 10:40], off[..., edge + 10:40])  # interior unchanged


def test_harmonization_gains_are_the_hand_computed_change_of_the_surroundings():
    n, h, w = 2, 40, 40
    alpha = torch.zeros(n, 1, h, w)
    alpha[:, :, 10:30, 15:25] = 1
    old, new = torch.tensor([0.2, 0.4, 0.6]), torch.tensor([0.5, 0.3, 0.1])
    frames = alpha * _plain(torch.tensor([0.7, 0.5, 0.3]), n, h, w) + (1 - alpha) * _plain(old, n, h, w)
    raw = frame_log_gains(frames, alpha, _plain(new, n, h, w))
    want = torch.log(new / old)                                       # ratio of the rings' mean colours
    torch.testing.assert_close(raw, want.expand(n, 3), atol=1e-5, rtol=0)
    gains = harmonization_gains(frames, alpha, _plain(new, n, h, w), 0.5, 3)
    torch.testing.assert_close(gains, torch.exp((0.5 * want).clamp(-MAX_LOG_GAIN, MAX_LOG_GAIN)).expand(n, 3),
                               atol=1e-5, rtol=0)
    assert torch.equal(harmonization_gains(frames, alpha, frames, 1.0, 0), torch.ones(n, 3))  # same scene: none


def test_harmonization_undoes_a_camera_exposure_and_white_balance_change():
    g = torch.Generator().manual_seed(0)
    n, h, w = 2, 48, 64
    scene = torch.nn.functional.interpolate(torch.rand(n, 3, 6, 8, generator=g), size=(h, w), mode="bilinear")
    scene = 0.15 + 0.6 * scene                                        # textured, no clipping after the change
    alpha = torch.zeros(n, 1, h, w)
    alpha[:, :, 12:40, 24:40] = 1
    change = torch.tensor([1.3, 1.0, 0.7]).view(1, 3, 1, 1)          # warmer and brighter camera
    source = scene * change
    settings = CompositeSettings(light_wrap=0.0, harmonize=1.0)
    out = composite(source, scene, alpha, source, settings)           # new background = the true scene
    torch.testing.assert_close(out, scene, atol=2e-3, rtol=0)
    untouched = composite(source, scene, alpha, source, NEUTRAL)
    assert float((untouched - scene).abs().max()) > 0.1


def test_harmonization_does_not_flicker():
    g = torch.Generator().manual_seed(1)
    n, h, w, radius = 30, 32, 32, 4
    alpha = torch.zeros(n, 1, h, w)
    alpha[:, :, 8:28, 12:20] = 1
    frames = torch.full((n, 3, h, w), 0.4)
    flicker = 0.5 + torch.rand(n, 1, 1, 1, generator=g)               # new background brightness jumps per frame
    background = torch.full((n, 3, h, w), 0.4) * flicker
    raw = frame_log_gains(frames, alpha, background)
    smooth = torch.log(harmonization_gains(frames, alpha, background, 1.0, radius))
    raw_step = (raw[1:] - raw[:-1]).abs().max()
    step = (smooth[1:] - smooth[:-1]).abs().max()
    bound = (raw.max() - raw.min()) / (2 * radius + 1)                # moving average over 2r + 1 frames
    assert step <= bound + 1e-6
    assert step < raw_step / 3
    unsmoothed = torch.log(harmonization_gains(frames, alpha, background, 1.0, 0))
    assert (unsmoothed[1:] - unsmoothed[:-1]).abs().max() > bound      # radius 0 would flicker


def test_frames_without_a_person_borrow_their_neighbours_correction():
    n, h, w = 5, 32, 32
    alpha = torch.zeros(n, 1, h, w)
    alpha[[0, 1, 3, 4], :, 8:24, 12:20] = 1                           # frame 2 has no person
    gains = harmonization_gains(torch.full((n, 3, h, w), 0.4), alpha, torch.full((n, 3, h, w), 0.6), 1.0, 1)
    torch.testing.assert_close(gains[2], gains[0])
    empty = harmonization_gains(torch.full((n, 3, h, w), 0.4), torch.zeros(n, 1, h, w),
                                torch.full((n, 3, h, w), 0.6), 1.0, 1)
    assert torch.equal(empty, torch.ones(n, 3))


def _standing_person(n=1, h=48, w=64):
    alpha = torch.zeros(n, 1, h, w)
    alpha[:, :, 10:20, 30:40] = 1                                     # feet on row 19
    return alpha


def test_shadow_is_the_silhouette_flipped_below_the_feet():
    alpha = _standing_person()
    down = shadow_matte(alpha, angle=0.0, length=1.0, softness=0.0)
    want = torch.zeros_like(alpha)
    want[:, :, 19:29, 30:40] = 1                                      # y_src = 19 − (y − 19) ∈ [10, 19]
    torch.testing.assert_close(down, want, atol=1e-5, rtol=0)
    half = shadow_matte(alpha, angle=0.0, length=0.5, softness=0.0)  # half as long: rows 19..23
    assert float(half[0, 0, 19:24, 30:40].min()) == pytest.approx(1.0) and float(half[0, 0, 25:, :].max()) == 0
    sheared = shadow_matte(alpha, angle=45.0, length=1 / math.cos(math.radians(45)), softness=0.0)
    for d in range(0, 9):                                             # row 19 + d is shifted right by d
        row = sheared[0, 0, 19 + d]
        torch.testing.assert_close(row[30 + d:40 + d], torch.ones(10), atol=1e-5, rtol=0)
        assert float(row[:30 + d].sum() + row[40 + d:].sum()) < 1e-5


def test_shadow_off_leaves_the_background_and_on_darkens_it_by_the_strength():
    alpha = _standing_person(n=2)
    frames = torch.full((2, 3, 48, 64), 0.3)
    background = torch.full((2, 3, 48, 64), 0.8)
    off = composite(frames, background, alpha, frames, NEUTRAL)
    assert torch.equal(off[alpha.expand_as(off) == 0], background[alpha.expand_as(off) == 0])
    on = composite(frames, background, alpha, frames, CompositeSettings(light_wrap=0.0, harmonize=0.0, shadow=0.5,
                                                                         shadow_angle=0.0, shadow_length=1.0))
    assert float(on[0, 0, 23, 35]) == pytest.approx(0.8 * (1 - 0.5), abs=0.02)   # middle of the shadow
    assert torch.equal(on[:, :, :10], off[:, :, :10])                 # above the head: no shadow
    assert torch.equal(on[:, :, :, :20], off[:, :, :, :20])           # far to the side: no shadow


def test_bad_settings_and_shapes_are_refused_with_the_name():
    frames, alpha, person, green = soft_clip(n=2)
    with pytest.raises(ValueError, match="harmonize must be in \\[0, 1\\], got 1.5"):
        composite(frames, green, alpha, person, CompositeSettings(harmonize=1.5))
    with pytest.raises(ValueError, match="shadow_angle must be within"):
        composite(frames, green, alpha, person, CompositeSettings(shadow_angle=95))
    with pytest.raises(ValueError, match="background .* differs from frames"):
        composite(frames, green[:1], alpha, person)
    with pytest.raises(ValueError, match="foreground colour .* differs from frames"):
        composite(frames, green, alpha, person[..., :10])


def test_estimating_the_foreground_keeps_torch_thread_count(tmp_path):
    """Importing pymatting (numba) sets torch's CPU threads; the composite must not change the host's setting."""
    code = ("import torch; torch.set_num_threads(1)\n"
            "from dynascene_core.compositing import estimate_foreground\n"
            "estimate_foreground(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8))\n"
            "assert torch.get_num_threads() == 1, torch.get_num_threads()\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={**os.environ, "OMP_NUM_THREADS": "4"})


def test_gpu_blur_path_equals_the_cpu_path():
    """The convolution used on GPUs, run here on the CPU, against OpenCV's blur used on the CPU."""
    from dynascene_core.compositing import filters

    images = torch.rand(2, 3, 30, 45, generator=torch.Generator().manual_seed(3))
    for sigma in (0.8, 2.5, 6.0):
        taps = filters.gaussian_kernel(sigma)
        torch.testing.assert_close(filters._blur_conv(images, taps), filters.gaussian_blur(images, sigma),
                                   atol=1e-5, rtol=0)
