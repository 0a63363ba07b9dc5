import pytest
import torch

from dynascene_core.sampling.schedule import inference_scheduler, training_scheduler
from dynascene_core.sampling.windows import context_windows, window_weights


@pytest.mark.parametrize("n,length,overlap", [(1, 24, 4), (24, 24, 4), (25, 24, 4), (60, 24, 4), (100, 16, 8),
                                              (47, 24, 0)])
def test_windows_cover_every_frame_with_weights_summing_to_one(n, length, overlap):
    windows = context_windows(n, length, overlap)
    assert windows[0].start == 0 and windows[-1].stop == n
    assert all(len(w) == min(n, length) for w in windows)
    for a, b in zip(windows, windows[1:]):
        assert a.start < b.start and a.stop - b.start >= overlap  # fixed, non-wrapping, overlapping
    weights = window_weights(windows, n)
    assert torch.allclose(weights.sum(0), torch.ones(n), atol=1e-6)
    for i, w in enumerate(windows):  # zero weight outside a window, positive inside
        inside = torch.zeros(n, dtype=torch.bool)
        inside[w.start:w.stop] = True
        assert (weights[i][~inside] == 0).all() and (weights[i][inside] > 0).all()


def test_single_window_has_unit_weight():
    windows = context_windows(16, 24, 4)
    assert windows == [range(16)]
    assert torch.equal(window_weights(windows, 16), torch.ones(1, 16))


def test_crossfade_is_monotonic_in_overlap():
    windows = context_windows(44, 24, 4)
    assert windows == [range(0, 24), range(20, 44)]
    w = window_weights(windows, 44)
    assert torch.all(w[0, 20:24].diff() < 0) and torch.all(w[1, 20:24].diff() > 0)


def test_bad_window_settings_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        context_windows(30, 8, 8)
    with pytest.raises(ValueError, match="at least one frame"):
        context_windows(0)


def test_training_and_inference_betas_are_sd15_scaled_linear():
    # SD1.5's scaled_linear betas written out: (sqrt(0.00085) + i/999·(sqrt(0.012) − sqrt(0.00085)))²
    def beta(i):
        return (0.00085 ** 0.5 + i / 999 * (0.012 ** 0.5 - 0.00085 ** 0.5)) ** 2

    for scheduler in (inference_scheduler(), training_scheduler()):
        assert scheduler.config.prediction_type == "epsilon"
        for i, expected in [(0, 0.00085), (1, beta(1)), (500, beta(500)), (999, 0.012)]:
            assert abs(float(scheduler.betas[i]) - expected) < 1e-9, (i, float(scheduler.betas[i]), expected)
        # alpha-bar at t = 999 of SD1.5 is 0.0047 (its well-known terminal SNR)
        assert abs(float(scheduler.alphas_cumprod[999]) - 0.004660) < 2e-5
    inf = inference_scheduler(50)
    assert inf.timesteps[0] == 981 and inf.timesteps[-1] == 1  # steps_offset 1, leading spacing


@pytest.mark.parametrize("n,length,overlap", [(48, 24, 4), (60, 24, 4), (100, 16, 8), (241, 24, 4), (25, 24, 4)])
def test_windows_are_spread_evenly(n, length, overlap):
    windows = context_windows(n, length, overlap)
    overlaps = [a.stop - b.start for a, b in zip(windows, windows[1:])]
    assert min(overlaps) >= overlap and max(overlaps) - min(overlaps) <= 1  # equal up to rounding
    assert len(windows) == -(-(n - overlap) // (length - overlap))         # the fewest windows that fit
    covered = torch.zeros(n, dtype=torch.int64)
    for w in windows:
        covered[w.start:w.stop] += 1
    assert (covered >= 1).all()


def test_forty_eight_frames_split_into_equal_thirds():
    assert context_windows(48, 24, 4) == [range(0, 24), range(12, 36), range(24, 48)]
