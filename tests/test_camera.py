"""Camera conventions: pose files, relative poses, resampling, resolution, presets, Plücker, plots."""

import math
import os

import numpy as np
import pytest
import torch

from dynascene_core.camera import (PRESET_NAMES, CameraTrajectory, PoseFileError, combine, make_preset,
                                   plot_trajectory, plucker_embedding)
from dynascene_core.camera.trajectory import (axis_angle_to_matrix, matrix_to_quaternion, quaternion_to_matrix,
                                              rotation_angle_deg)

SAMPLE = os.path.join(os.path.dirname(__file__), "data", "re10k_sample.txt")


def _data_lines(path):
    with open(path) as handle:
        return [line.split() for line in handle.read().splitlines()[1:] if line.strip()]


def test_realestate10k_load_matches_file_and_roundtrips_exactly(tmp_path):
    traj = CameraTrajectory.load(SAMPLE)
    rows = _data_lines(SAMPLE)
    assert len(traj) == len(rows) == 4
    w2c = np.array([[float(v) for v in r[7:]] for r in rows]).reshape(-1, 3, 4)
    np.testing.assert_allclose(torch.linalg.inv(traj.c2w)[:, :3].numpy(), w2c, atol=1e-12)
    np.testing.assert_allclose(traj.intrinsics[0].numpy(), [0.474812461, 0.844111024, 0.5, 0.5])
    out = tmp_path / "again.txt"
    traj.save(out)
    assert _data_lines(out) == rows  # every printed field identical, timestamps included


def test_tum_roundtrip_and_autodetect(tmp_path):
    traj = CameraTrajectory.load(SAMPLE)
    path = tmp_path / "poses_tum.txt"
    traj.save(path, format="tum")
    back = CameraTrajectory.load(path, intrinsics=(0.5, 0.9, 0.5, 0.5))
    np.testing.assert_allclose(back.c2w.numpy(), traj.c2w.numpy(), atol=2e-9)
    assert back.intrinsics[0, 1].item() == 0.9
    again = tmp_path / "again_tum.txt"
    back.save(again, format="tum")
    # quaternions are re-normalised on reading, so the last printed digit may move by one
    first, second = _data_lines(path), _data_lines(again)
    assert [r[0] for r in first] == [r[0] for r in second]
    np.testing.assert_allclose(np.array(second, float), np.array(first, float), rtol=0, atol=1.01e-9)
    # a TUM file whose first line is already data (no header)
    headerless = tmp_path / "headerless.txt"
    headerless.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")
    assert len(CameraTrajectory.load(headerless)) == len(traj)


def test_quaternion_matrix_roundtrip():
    rot = axis_angle_to_matrix(np.array([[0.3, -1.2, 2.0], [0.0, 0.0, 3.1], [1e-9, 0, 0]]))
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(rot)), rot, atol=1e-12)


def test_relative_to_definition():
    traj = CameraTrajectory.load(SAMPLE)
    rel = traj.relative_to(2)
    expected = torch.linalg.inv(traj.c2w[2]) @ traj.c2w[1]
    torch.testing.assert_close(rel.c2w[1], expected)
    torch.testing.assert_close(rel.c2w[2], torch.eye(4, dtype=torch.float64))


def test_resample_keeps_endpoints_and_slerps():
    traj = make_preset("pan_right", 5)  # 2 degrees of yaw over 4 steps
    out = traj.resample(9)
    assert len(out) == 9
    torch.testing.assert_close(out.c2w[0], traj.c2w[0])
    torch.testing.assert_close(out.c2w[-1], traj.c2w[-1])
    # midway between frames 0 and 1 (0.5 deg yaw): slerp gives exactly 0.25 deg, still a rotation
    angle = rotation_angle_deg(np.eye(3), out.c2w[1, :3, :3].numpy())
    assert abs(angle - 0.25) < 1e-9
    np.testing.assert_allclose(out.c2w[1, :3, :3].numpy() @ out.c2w[1, :3, :3].numpy().T, np.eye(3), atol=1e-12)


def test_for_resolution_square_pixels():
    traj = CameraTrajectory.static(2)  # defaults describe a 1280x720 source
    wide_to_square = traj.for_resolution(1280, 720, 512, 512)
    fx, fy, cx, cy = wide_to_square.intrinsics[0].tolist()
    # CameraCtrl rescale_fxy: fx *= H * aspect_src / W, fy unchanged
    assert fx == pytest.approx(0.474812461 * 512 * (1280 / 720) / 512)
    assert fy == pytest.approx(0.844111024) and cx == pytest.approx(0.5) and cy == pytest.approx(0.5)
    # the source had square pixels (fx·1280 = fy·720), so must the 512x512 crop: fx·512 = fy·512
    assert 0.474812461 * 1280 == pytest.approx(0.844111024 * 720, rel=1e-7)
    assert fx * 512 == pytest.approx(fy * 512, rel=1e-7)
    tall = traj.for_resolution(720, 1280, 768, 432)
    fx2, fy2 = tall.intrinsics[0, :2].tolist()
    assert fx2 == pytest.approx(0.474812461)
    assert fy2 == pytest.approx(0.844111024 * (768 / (720 / 1280)) / 432)


def test_concat_chain_and_scale_speed():
    a, b = make_preset("dolly_in", 5), make_preset("pan_right", 4)
    joined = CameraTrajectory.concat([a, b])
    assert len(joined) == 5 + 4 - 1
    torch.testing.assert_close(joined.c2w[4], a.c2w[-1])
    assert joined.positions[-1, 2].item() == pytest.approx(a.positions[-1, 2].item())
    assert len(CameraTrajectory.concat([a, b], chain=False)) == 9
    fast = make_preset("orbit_left", 9).scale_speed(2.0)
    assert rotation_angle_deg(np.eye(3), fast.c2w[-1, :3, :3].numpy()) == pytest.approx(16.0, abs=1e-6)


def _forward(traj):
    return traj.c2w[-1, :3, 2].numpy()


def test_preset_motion_signs():
    n = 13
    assert np.allclose(make_preset("static", n).c2w.numpy(), np.eye(4))
    assert _forward(make_preset("pan_right", n))[0] > 0.05  # looks further right (+x)
    assert _forward(make_preset("pan_left", n))[0] < -0.05
    assert _forward(make_preset("tilt_up", n))[1] < -0.05  # looks up (-y is up)
    assert _forward(make_preset("tilt_down", n))[1] > 0.05
    assert make_preset("pan_up", n).positions[-1, 1] < 0 and make_preset("pan_down", n).positions[-1, 1] > 0
    assert make_preset("truck_right", n).positions[-1, 0] > 0
    assert make_preset("dolly_in", n).positions[-1, 2] > 0 and make_preset("dolly_out", n).positions[-1, 2] < 0
    assert make_preset("zoom_in", n).intrinsics[-1, 0] > make_preset("zoom_in", n).intrinsics[0, 0]
    assert make_preset("zoom_out", n).intrinsics[-1, 0] < make_preset("zoom_out", n).intrinsics[0, 0]
    # clockwise roll (seen from behind): the camera's right axis turns downwards (+y)
    assert make_preset("roll_clockwise", n).c2w[-1, 1, 0] > 0
    assert make_preset("roll_anticlockwise", n).c2w[-1, 1, 0] < 0
    orbit = make_preset("orbit_right", n)
    assert orbit.positions[-1, 0] > 0 and _forward(orbit)[0] < 0  # moves right, turns left to the target
    target = np.array([0.0, 0.0, 2.0])
    to_target = target - orbit.positions[-1].numpy()
    np.testing.assert_allclose(_forward(orbit), to_target / np.linalg.norm(to_target), atol=1e-12)
    assert make_preset("orbit_left", n).positions[-1, 0] < 0
    for name in PRESET_NAMES:
        assert torch.allclose(make_preset(name, n).c2w[0], torch.eye(4, dtype=torch.float64))


def test_preset_speed_easing_and_combination():
    lin = make_preset("pan_right", 11)
    eased = make_preset("pan_right", 11, easing="ease-in")
    torch.testing.assert_close(lin.c2w[-1], eased.c2w[-1])
    assert rotation_angle_deg(np.eye(3), eased.c2w[5, :3, :3].numpy()) < \
        rotation_angle_deg(np.eye(3), lin.c2w[5, :3, :3].numpy())
    double = make_preset("pan_right", 11, speed=2.0)
    assert rotation_angle_deg(np.eye(3), double.c2w[-1, :3, :3].numpy()) == pytest.approx(10.0)
    combo = make_preset("dolly_in+pan_right", 11)
    torch.testing.assert_close(combo.c2w, combine(["dolly_in", "pan_right"], 11).c2w)
    torch.testing.assert_close(combo.c2w, make_preset("dolly_in", 11).c2w @ make_preset("pan_right", 11).c2w)
    assert combo.positions[-1, 2] > 0 and _forward(combo)[0] > 0
    with pytest.raises(ValueError, match="spin"):
        make_preset("dolly_in+spin", 5)


def _plucker_reference(c2w, intr, height, width):
    """Per-pixel loops straight from the definition (DESIGN.md §3)."""
    out = np.zeros((len(c2w), 6, height, width))
    for f in range(len(c2w)):
        fx, fy, cx, cy = intr[f] * [width, height, width, height]
        rot, origin = c2w[f, :3, :3], c2w[f, :3, 3]
        for j in range(height):
            for i in range(width):
                d = np.array([(i + 0.5 - cx) / fx, (j + 0.5 - cy) / fy, 1.0])
                d = rot @ (d / np.linalg.norm(d))
                m = np.array([origin[1] * d[2] - origin[2] * d[1], origin[2] * d[0] - origin[0] * d[2],
                              origin[0] * d[1] - origin[1] * d[0]])
                out[f, :, j, i] = np.concatenate([m, d])
    return out


@pytest.mark.parametrize("frames", [3, 4])
def test_plucker_matches_reference(frames):
    traj = CameraTrajectory.load(SAMPLE)[:frames].relative_to(0)
    height, width = 3, 5  # 3 rows: the torch.cross dim trap would bite here
    emb = plucker_embedding(traj, height, width, dtype=torch.float64)
    assert emb.shape == (frames, 6, height, width)
    ref = _plucker_reference(traj.c2w.numpy(), traj.intrinsics.numpy(), height, width)
    np.testing.assert_allclose(emb.numpy(), ref, atol=1e-12)
    assert torch.count_nonzero(emb[0, :3]) == 0  # reference frame: zero moment
    assert emb[1, :3].abs().max() > 0.01
    np.testing.assert_allclose(emb[:, 3:].norm(dim=1).numpy(), 1.0, atol=1e-12)


def test_plucker_default_dtype_and_non_square():
    emb = plucker_embedding(make_preset("orbit_left", 2), 4, 7)
    assert emb.dtype == torch.float32 and emb.shape == (2, 6, 4, 7)
    # centre-ish pixel of the identity camera looks (almost) straight ahead
    assert emb[0, 5, 2, 3] > 0.95


@pytest.mark.parametrize("content, message", [
    ("url\n1 2 3\n", ":2: expected 19 fields"),
    ("url\n" + "0 " * 18 + "x\n", ":2: not a number"),
    ("url\n0 0.5 0.8 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n0 0.5 0.8 0.5 0.5 0 0 1 0 0 nan 0 1 0 0 0 0 1 0\n",
     ":3: NaN"),
    ("url\n0 0.5 0.8 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 0 0\n", ":2: singular"),
    ("url\n0 0.5 0.8 0.5 0.5 0 0 2 0 0 0 0 1 0 0 0 0 1 0\n", ":2: 3x3 block is not a rotation"),
    ("url\n0 0.5 0.8 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n0 0.5 0.8 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1\n",
     ":3: expected 19 fields"),
    ("# t x y z qx qy qz qw\n0 0 0 0 0 0 0 1\n1 0 0 0 0 0 0 2\n", ":3: quaternion norm"),
    ("url\n", "no pose lines"),
])
def test_bad_pose_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(PoseFileError) as info:
        CameraTrajectory.load(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_plot_image():
    image = plot_trajectory(make_preset("orbit_left+tilt_up", 16), size=(320, 160))
    assert image.shape == (160, 320, 3) and image.dtype == np.uint8
    background = np.array([250, 250, 248])
    coloured = np.abs(image.astype(int) - background).sum(-1) > 60
    assert coloured[:, :160].mean() > 0.005 and coloured[:, 160:].mean() > 0.005
    static = plot_trajectory(CameraTrajectory.static(3))
    assert static.shape == (256, 512, 3)
    assert math.isfinite(float(static.mean()))


@pytest.mark.parametrize("preset", ["pan_left", "pan_right"])
def test_plot_shows_the_turn_of_a_camera_that_does_not_move(preset):
    """A pan moves no camera centre: the top view must still show the last viewing direction, long enough to
    see past the start/end markers and at the yaw the trajectory has (``atan2(forward_x, forward_z)``)."""
    trajectory = make_preset(preset, 16, speed=2.0)
    forward = trajectory.c2w[-1, :3, 2].numpy()
    yaw = math.degrees(math.atan2(forward[0], forward[2]))
    top = plot_trajectory(trajectory, size=(320, 160))[:, :160].astype(int)
    marker_y, marker_x = np.argwhere(np.abs(top - [200, 50, 50]).sum(-1) < 60).mean(0)  # the red end box
    last = np.argwhere(np.abs(top - [253, 231, 37]).sum(-1) < 60)  # viridis' last colour
    reach = np.hypot(last[:, 0] - marker_y, last[:, 1] - marker_x)
    tip_y, tip_x = last[reach.argmax()]
    drawn = math.degrees(math.atan2(tip_x - marker_x, marker_y - tip_y))  # x right, z up the page
    assert abs(yaw) > 10 and reach.max() > 25 and abs(drawn - yaw) < 4, (yaw, drawn, reach.max())


def test_camera_condition_fits_intrinsics_to_the_target_with_square_pixels():
    from dynascene_core.camera import camera_condition, relative_cameras

    preset = make_preset("pan_right", 4)  # 16:9 default intrinsics
    for width, height in ((64, 36), (36, 64), (48, 48)):
        k = relative_cameras(preset, 0, height, width).intrinsics_pixels(height, width)
        assert torch.allclose(k[:, 0], k[:, 1]), (width, height)  # fx == fy in pixels
        assert torch.allclose(k[:, 2:], torch.tensor([width / 2, height / 2], dtype=k.dtype))
    # already square at the target: unchanged (estimated or for_resolution'd trajectories)
    landscape = relative_cameras(preset, 0, 36, 64)
    assert torch.allclose(landscape.intrinsics, preset.intrinsics)
    # relative to the chosen camera; any frame indices; F = 3 works
    rel = relative_cameras(preset, 2, 36, 64)
    assert torch.allclose(rel.c2w[2], torch.eye(4, dtype=rel.c2w.dtype))
    emb = camera_condition(preset, 36, 64, reference_frame=2)([0, 2, 3])
    assert emb.shape == (3, 6, 36, 64) and emb[1, :3].abs().max() < 1e-6
    with pytest.raises(ValueError, match="reference frame 4 is outside"):
        relative_cameras(preset, 4, 36, 64)
