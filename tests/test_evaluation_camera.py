"""Camera-following error: known trajectories against themselves, known offsets, scale, and a real estimate."""

import math

import numpy as np
import pytest
import torch

from dynascene_core.camera import CameraTrajectory, make_preset, render_synthetic_clip
from dynascene_core.camera.trajectory import axis_angle_to_matrix
from dynascene_core.evaluation import EvalClip, camera_following_error, evaluate_clips, trajectory_error
from dynascene_core.evaluation.camera_error import fov_of


def _moved(trajectory: CameraTrajectory, rotation=None, scale=1.0) -> CameraTrajectory:
    """Same trajectory with each camera turned by ``rotation`` (in its own frame) from frame 1 on and its
    centre scaled by ``scale``."""
    c2w = trajectory.relative_to(0).c2w.clone()
    if rotation is not None:
        c2w[1:, :3, :3] = c2w[1:, :3, :3] @ torch.from_numpy(rotation)
    c2w[:, :3, 3] *= scale
    return CameraTrajectory(c2w, trajectory.intrinsics)


def test_a_trajectory_against_itself_is_zero():
    requested = make_preset("orbit_left+dolly_in", 10)
    error = trajectory_error(requested, requested)
    assert np.allclose(error.rotation_deg, 0, atol=1e-5) and np.allclose(error.translation, 0, atol=1e-9)
    assert np.allclose(error.direction_deg[1:], 0, atol=1e-4) and math.isnan(error.direction_deg[0])
    assert error.scale == pytest.approx(1.0) and error.rot_err == pytest.approx(0, abs=1e-6)


def test_known_rotation_offset_gives_that_angle():
    requested = make_preset("pan_right+truck_left", 9)
    offset = axis_angle_to_matrix(np.radians(3.0) * np.array([0.6, 0.0, 0.8]))  # 3° about a tilted axis
    error = trajectory_error(requested, _moved(requested, offset))
    assert error.rotation_deg[0] == 0
    assert np.allclose(error.rotation_deg[1:], 3.0, atol=1e-6)
    assert error.rot_err == pytest.approx(8 * math.radians(3.0), rel=1e-6)  # CameraCtrl-style sum, radians
    assert error.summary()["rot_err_mean_deg"] == pytest.approx(3.0)
    assert np.allclose(error.translation, 0, atol=1e-9)  # centres are unchanged


def test_translation_alignment_is_invariant_to_scale():
    requested = make_preset("dolly_in+truck_right", 8)
    for scale in (0.05, 1.0, 37.0):
        error = trajectory_error(requested, _moved(requested, scale=scale))
        assert np.allclose(error.translation, 0, atol=1e-9) and error.scale == pytest.approx(1 / scale)
        assert np.allclose(error.direction_deg[1:], 0, atol=1e-4)
    # a wrong estimate: its errors do not depend on the scale it came with
    c2w = requested.c2w.clone()
    c2w[:, 0, 3] *= -0.5  # sideways part reversed and halved
    wrong = CameraTrajectory(c2w, requested.intrinsics)
    errors = [trajectory_error(requested, _moved(wrong, scale=s)).translation for s in (0.1, 10.0)]
    assert errors[0].max() > 0.1 and np.allclose(errors[0], errors[1], atol=1e-9)


def test_translation_direction_and_error_by_hand():
    requested = make_preset("truck_right", 5)  # centres (0.025·j, 0, 0): extent 0.1
    c2w = requested.c2w.clone()
    angle = math.radians(30)
    c2w[:, :3, 3] = requested.c2w[:, :3, 3].norm(dim=1, keepdim=True) * torch.tensor(
        [math.cos(angle), 0.0, math.sin(angle)], dtype=torch.float64)
    error = trajectory_error(requested, CameraTrajectory(c2w, requested.intrinsics))
    assert np.allclose(error.direction_deg[1:], 30.0, atol=1e-6)
    # unit-extent centres j/4 along x; estimate along the 30° direction; least-squares scale cos 30°
    assert error.scale == pytest.approx(math.cos(angle), rel=1e-9)
    assert np.allclose(error.translation, np.arange(5) / 4 * math.sin(angle), atol=1e-9)


def test_pure_rotation_request_has_no_translation_error():
    requested = make_preset("pan_left", 6)
    error = trajectory_error(requested, requested)
    assert np.isnan(error.translation).all() and error.summary()["trans_err"] is None
    assert error.summary()["rot_err"] == pytest.approx(0, abs=1e-6)


def _turning(axis, degrees_per_frame: float, frames: int = 6) -> CameraTrajectory:
    """Cameras at the origin turning about ``axis`` by ``degrees_per_frame`` per frame."""
    c2w = torch.eye(4, dtype=torch.float64).repeat(frames, 1, 1)
    for j in range(frames):
        c2w[j, :3, :3] = torch.from_numpy(axis_angle_to_matrix(np.radians(j * degrees_per_frame) * np.asarray(axis)))
    return CameraTrajectory(c2w, torch.tensor([[0.5, 0.5, 0.5, 0.5]], dtype=torch.float64).repeat(frames, 1))


def test_turn_ratio_is_the_share_of_the_requested_turn():
    requested = _turning([0.0, 1.0, 0.0], 2.0)  # a 10° pan by the last frame
    for share in (1.0, 0.25, 0.0, -1.0):  # all of it, a quarter, none, the other way
        error = trajectory_error(requested, _turning([0.0, 1.0, 0.0], 2.0 * share))
        assert error.turn_ratio == pytest.approx(share, abs=1e-9)
        assert np.allclose(error.estimated_turn_deg, np.arange(6) * 2.0 * abs(share), atol=1e-6)
    assert np.allclose(error.requested_turn_deg, np.arange(6) * 2.0, atol=1e-6)
    across = trajectory_error(requested, _turning([1.0, 0.0, 0.0], 2.0))  # as far, about a perpendicular axis
    assert across.turn_ratio == pytest.approx(0.0, abs=1e-9) and across.rotation_deg[-1] > 14
    still = trajectory_error(_turning([0.0, 1.0, 0.0], 0.1), requested)  # a request of 0.5°: no ratio
    assert math.isnan(still.turn_ratio) and still.summary()["turn_ratio"] is None
    assert error.summary()["per_frame"]["requested_turn_deg"][-1] == pytest.approx(10.0)


def test_fov_of_matches_the_intrinsics():
    trajectory = make_preset("static", 2, intrinsics=(0.5, 0.5 * 16 / 9, 0.5, 0.5))  # f = W/2: 90° wide
    assert fov_of(trajectory, 90, 160) == pytest.approx(90.0)


def test_estimated_camera_of_a_rendered_clip_follows_and_a_wrong_request_does_not():
    requested = make_preset("pan_right", 8, speed=2.0)  # 1° per frame
    clip = render_synthetic_clip(requested, 96, 160, seed=3)
    good = camera_following_error(clip.frames, requested, clip.masks)
    wrong = camera_following_error(clip.frames, make_preset("pan_left", 8, speed=2.0), clip.masks)
    assert good.rotation_deg[1:].mean() < 0.35 * 1.0
    assert wrong.rotation_deg[-1] == pytest.approx(14.0, abs=1.5)  # requested −7°, the video turned +7°
    assert good.turn_ratio == pytest.approx(1.0, abs=0.1) and wrong.turn_ratio == pytest.approx(-1.0, abs=0.1)
    report = evaluate_clips([EvalClip("pan", clip.frames, clip.frames, clip.masks, requested)], ["camera"])
    assert report.metrics["rot_err"] == pytest.approx(good.rot_err, rel=1e-6)
    assert report.per_clip["pan"]["camera"]["estimator_mode"] == good.estimator_mode
    assert report.camera["turn_ratio_median"] == pytest.approx(good.turn_ratio)
    assert f"median over clips {good.turn_ratio:.2f}" in report.table()
