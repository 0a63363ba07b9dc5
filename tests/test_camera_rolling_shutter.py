"""Rolling-shutter correction: unrolled tracks against an explicit per-line projection, the readout and its
direction found on rendered rolling-shutter clips, and clips with a global shutter left alone."""

import numpy as np
import pytest
import rolling_shutter_clips as clips

from dynascene_core.camera import estimate_trajectory, render_synthetic_clip
from dynascene_core.camera.estimate import ROTATION_KEPT
from dynascene_core.camera.rolling_shutter import candidate_directions, find_readout, rotation_rates, unroll
from dynascene_core.camera.trajectory import axis_angle_to_matrix, rotation_angle_deg

RATE = np.array([0.004, -0.03, 0.01])  # radians per frame: a pan with some tilt and roll


# seconds after the principal line, per pixel (x, y), in readout units: the four ways a sensor can be held
LINE_DELAY = {"down": lambda x, y, k, w, h: (y - k[3]) / h, "up": lambda x, y, k, w, h: (k[3] - y) / h,
              "right": lambda x, y, k, w, h: (x - k[2]) / w, "left": lambda x, y, k, w, h: (k[2] - x) / w}


def _rolling_projection(points3d: np.ndarray, frames: int, k: np.ndarray, width: int, height: int, readout: float,
                        direction: str = "down") -> np.ndarray:
    """Pixels ``(F, N, 2)`` of points seen by a camera turning at the constant ``RATE`` (world-to-camera rotation
    exp(t·RATE) at time t), each point at the time its own line is read (pixel and time solved by fixed point)."""
    views = []
    for i in range(frames):
        column, row = np.full(len(points3d), k[2]), np.full(len(points3d), k[3])
        for _ in range(50):
            time = i + readout * LINE_DELAY[direction](column, row, k, width, height)
            cam = (axis_angle_to_matrix(time[:, None] * RATE) @ points3d[..., None])[..., 0]
            column, row = cam[:, 0] / cam[:, 2] * k[0] + k[2], cam[:, 1] / cam[:, 2] * k[1] + k[3]
        views.append(np.stack([column, row], -1))
    return np.stack(views)


def _turning_poses(frames: int) -> np.ndarray:
    w2c = np.tile(np.eye(4), (frames, 1, 1))
    w2c[:, :3, :3] = axis_angle_to_matrix(np.arange(frames)[:, None] * RATE)
    return w2c


def test_rotation_rates_of_a_constant_turn():
    np.testing.assert_allclose(rotation_rates(_turning_poses(6)), np.tile(RATE, (6, 1)), atol=1e-12)


@pytest.mark.parametrize("direction", ["down", "up", "right", "left"])
def test_unroll_gives_the_global_shutter_view_of_a_turning_camera(direction):
    rng = np.random.default_rng(3)
    width, height = 320, 240
    k = np.array([250.0, 250.0, 170.0, 110.0])
    points3d = np.c_[rng.uniform(-3, 3, 200), rng.uniform(-2, 2, 200), rng.uniform(4, 8, 200)]
    frames, readout = 5, 0.8
    rolled = _rolling_projection(points3d, frames, k, width, height, readout, direction)
    still = _rolling_projection(points3d, frames, k, width, height, 0.0)
    rolled[2, :10] = np.nan  # absent observations stay absent
    assert np.nanmax(np.abs(rolled - still)) > 2.0  # the shutter moves lines by pixels
    moved = unroll(rolled, _turning_poses(frames), k, width, height, readout, direction)
    assert np.isnan(moved[2, :10]).all()
    np.testing.assert_allclose(moved[~np.isnan(rolled[..., 0])], still[~np.isnan(rolled[..., 0])], atol=1e-6)
    np.testing.assert_array_equal(unroll(still, _turning_poses(frames), k, width, height, 0.0, direction), still)
    other = {"down": "up", "up": "down", "right": "left", "left": "right"}[direction]
    assert np.nanmax(np.abs(unroll(rolled, _turning_poses(frames), k, width, height, readout, other) - still)) > 2.0


def _scores(down: dict, other: float = 9.0):
    """A score function: ``down[readout]`` for rows read downward (5.0 past the table), ``other`` elsewhere."""
    return lambda value, towards: down.get(round(value, 2), 5.0) if towards == "down" or not value else other


def test_the_readout_search_on_known_scores():
    # a parabola through 0.25, 0.5, 0.75 with errors 0.9, 0.8, 0.85 has its minimum at 0.5 + 0.25 / 6
    assert find_readout(_scores({0: 1.0, 0.25: 0.9, 0.5: 0.8, 0.75: 0.85}), 320, 180) == pytest.approx(
        (0.5 + 0.25 / 6, "down"))
    assert find_readout(_scores({0: 1.0, 0.25: 0.9, 0.5: 0.8, 0.75: float("inf")}), 320, 180) == (0.5, "down")
    assert find_readout(_scores({0: 1.0, 0.25: 0.995}), 320, 180) == (0.0, None)  # under the 1 % bar
    assert find_readout(_scores({0: 1.0, 0.25: 0.995}), 320, 180, min_gain=0.001)[1] == "down"
    assert find_readout(_scores({0: 0.0, 0.25: 0.0}), 320, 180) == (0.0, None)
    assert find_readout(_scores({0: float("nan")}), 320, 180) == (0.0, None)
    assert find_readout(_scores({0: 1.0, 0.25: 0.5}), 320, 180, readout=0) == (0.0, None)
    assert find_readout(_scores({0: 1.0, 0.6: 0.5}), 320, 180, readout=0.6) == (0.6, "down")
    assert find_readout(_scores({0: 1.0}, other=0.1), 320, 180, readout=0.6) == (0.6, "up")  # best of down, up


def test_columns_are_searched_only_in_frames_at_least_as_tall_as_wide():
    assert candidate_directions(320, 180) == ("down", "up")
    assert set(candidate_directions(180, 320)) == {"down", "up", "right", "left"}
    assert set(candidate_directions(240, 240)) == {"down", "up", "right", "left"}


def _last_rotation_error(trajectory, estimate) -> float:
    true, found = trajectory.relative_to(0).c2w.numpy(), estimate.relative_to(0).c2w.numpy()
    return float(rotation_angle_deg(true[-1, :3, :3], found[-1, :3, :3]))


@pytest.fixture(scope="module")
def shaky_trajectory():
    return clips.shaky_trajectory()


@pytest.mark.parametrize("readout", [0.5, 0.9])
def test_the_readout_of_a_rolling_shutter_clip_is_found_and_corrected(shaky_trajectory, readout):
    clip = render_synthetic_clip(shaky_trajectory, 180, 320, seed=2, readout=readout)
    found, stats = estimate_trajectory(clip.frames, clip.masks, clips.fov_of(shaky_trajectory))
    ignored, ignored_stats = estimate_trajectory(clip.frames, clip.masks, clips.fov_of(shaky_trajectory), readout=0)
    assert abs(stats.quality.readout - readout) <= 0.15 and stats.quality.readout_direction == "down"
    assert ignored_stats.quality.readout == 0.0 and ignored_stats.quality.readout_direction is None
    corrected = _last_rotation_error(shaky_trajectory, found)
    uncorrected = _last_rotation_error(shaky_trajectory, ignored)
    assert corrected < 0.3 * uncorrected, (corrected, uncorrected)  # 0.36 deg against 1.40 at 0.5 frame
    # the second start, adjusted on the raw tracks and then corrected as the solution was, agrees (0.08 and 0.20 deg)
    assert stats.quality.verdict == "reliable" and stats.quality.start_disagreement_deg < 1.0
    given, given_stats = estimate_trajectory(clip.frames, clip.masks, clips.fov_of(shaky_trajectory), readout=readout)
    assert given_stats.quality.readout == readout
    assert _last_rotation_error(shaky_trajectory, given) < 0.3 * uncorrected


@pytest.mark.parametrize("quarter_turns, direction", [(2, "up"), (1, "left"), (-1, "right")])
def test_the_direction_of_the_readout_is_found(shaky_trajectory, quarter_turns, direction):
    """A phone held upside down reads its rows bottom to top; one held in portrait reads the picture's columns,
    one way or the other by which way it was turned: the rows-down clip turned so."""
    readout = 0.7
    frames, masks, truth = clips.turned_clip(shaky_trajectory, 180, 320, readout, quarter_turns)
    found, stats = estimate_trajectory(frames, masks, clips.fov_of(shaky_trajectory))
    assert stats.quality.readout_direction == direction and abs(stats.quality.readout - readout) <= 0.15
    assert f"rolling shutter {stats.quality.readout:.2f} frame, read {direction}" in stats.quality.summary()
    ignored, _ = estimate_trajectory(frames, masks, clips.fov_of(shaky_trajectory), readout=0)
    assert _last_rotation_error(truth, found) < 0.3 * _last_rotation_error(truth, ignored)  # 0.44 deg against 1.72 up
    wrong = {"up": "down", "left": "right", "right": "left"}[direction]
    _, given_stats = estimate_trajectory(frames, masks, clips.fov_of(shaky_trajectory), readout=readout)
    _, wrong_stats = estimate_trajectory(frames, masks, clips.fov_of(shaky_trajectory), readout=readout,
                                         readout_direction=wrong)
    assert (given_stats.quality.readout, given_stats.quality.readout_direction) == (readout, direction)
    assert wrong_stats.quality.readout_direction == wrong
    assert wrong_stats.quality.reprojection_px > 1.5 * given_stats.quality.reprojection_px


@pytest.fixture(scope="module")
def shaky_pan():
    return clips.shaky_pan()


@pytest.mark.parametrize("quarter_turns, direction", [(0, "down"), (1, "left")])
def test_a_rolling_shutter_pan_is_corrected(shaky_pan, quarter_turns, direction):
    """Without parallax the rotation fit's error finds the readout (landscape, and the picture turned to portrait).
    Uncorrected, the rotation fit leaves over 0.6 px, so with ``readout=0`` the general solve is tried: it takes the
    landscape clip (its points absorb some of the bending) and finds no solution for the portrait one, which keeps
    its turn but is not reported reliable."""
    readout = 0.7
    frames, masks, truth = clips.turned_clip(shaky_pan, 180, 320, readout, quarter_turns)
    found, stats = estimate_trajectory(frames, masks, clips.fov_of(shaky_pan))
    _, ignored_stats = estimate_trajectory(frames, masks, clips.fov_of(shaky_pan), readout=0)
    assert stats.quality.motion == "rotation"
    assert stats.quality.readout_direction == direction and abs(stats.quality.readout - readout) <= 0.15
    assert _last_rotation_error(truth, found) < 0.35
    assert ignored_stats.quality.readout == 0.0
    assert ignored_stats.quality.motion == "general" or (
        ignored_stats.quality.verdict == "uncertain" and ROTATION_KEPT in ignored_stats.quality.reasons[0])


def test_a_global_shutter_clip_is_not_corrected(shaky_trajectory, shaky_pan):
    clip = render_synthetic_clip(shaky_trajectory, 180, 320, seed=2)
    found, stats = estimate_trajectory(clip.frames, clip.masks, clips.fov_of(shaky_trajectory))
    assert stats.quality.readout == 0.0
    assert _last_rotation_error(shaky_trajectory, found) < 0.2
    pan = render_synthetic_clip(shaky_pan, 180, 320, seed=2)
    found, stats = estimate_trajectory(pan.frames, pan.masks, clips.fov_of(shaky_pan))
    assert stats.quality.motion == "rotation" and stats.quality.readout == 0.0
    assert _last_rotation_error(shaky_pan, found) < 0.3


@pytest.mark.parametrize("readout", [-0.1, 2.5, float("nan")])
def test_a_readout_outside_the_range_is_refused(readout):
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="readout"):
        estimate_trajectory(frames, readout=readout)


def test_an_unknown_readout_direction_is_refused():
    with pytest.raises(ValueError, match="readout_direction must be None or one of .*'down'.*got 'sideways'"):
        estimate_trajectory(np.zeros((2, 32, 32, 3), np.uint8), readout_direction="sideways")
