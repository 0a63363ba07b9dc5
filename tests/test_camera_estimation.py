"""Camera estimation on synthetic clips with known cameras, bad input, synthetic renderer, CLI."""

import json
import os
import subprocess
import sys
from unittest.mock import patch

import cv2
import numpy as np
import pytest
import torch

import dynascene_core.camera.estimate as estimate_module
import dynascene_core.camera.solutions as solutions_module
import dynascene_core.camera.tracks as tracks_module
from dynascene_core.camera import (CameraTrajectory, demo_clip, estimate_trajectory, make_preset,
                                   random_smooth_trajectory, render_synthetic_clip)
from dynascene_core.camera.bundle import agreeing_share, bundle_adjust
from dynascene_core.camera.estimate import SIFT_FEATURES
from dynascene_core.camera.geometry import (parallax_pair, parallax_residuals, plane_poses, solve_general,
                                            solve_rotation)
from dynascene_core.camera.matches import match_tracks
from dynascene_core.camera.tracks import WIDE_LK, Tracks, track_points
from dynascene_core.camera.trajectory import axis_angle_to_matrix, rotation_angle_deg
from dynascene_core.video import write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOV_OF_DEFAULTS = float(np.degrees(2 * np.arctan(0.5 / 0.474812461)))  # synthetic clips use these intrinsics


def _direction_error_deg(a, b):
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


@pytest.fixture(scope="module")
def dolly_pan_clip():
    return render_synthetic_clip(make_preset("dolly_in+pan_right", 12, speed=2.0), 144, 256, seed=3)


def test_synthetic_clip_is_deterministic_and_has_actor(dolly_pan_clip):
    clip = dolly_pan_clip
    assert clip.frames.shape == (12, 144, 256, 3) and clip.frames.dtype == np.uint8
    assert clip.masks.shape == (12, 144, 256) and set(np.unique(clip.masks)) <= {0.0, 1.0}
    coverage = clip.masks.mean(axis=(1, 2))
    assert (coverage > 0.2).all() and (coverage < 0.4).all()
    again = render_synthetic_clip(clip.trajectory, 144, 256, seed=3)
    assert np.array_equal(again.frames, clip.frames)
    assert not np.array_equal(clip.frames[0], clip.frames[-1])
    # the scene image is frame 0 without the actor: equal outside the mask, different on it
    outside = clip.masks[0] == 0
    assert np.array_equal(clip.scene_image[outside], clip.frames[0][outside])
    assert not np.array_equal(clip.scene_image[~outside], clip.frames[0][~outside])


def test_estimation_recovers_dolly_and_pan(dolly_pan_clip):
    clip = dolly_pan_clip
    est, stats = estimate_trajectory(clip.frames, clip.masks, fov_deg=FOV_OF_DEFAULTS)
    gt = clip.trajectory.relative_to(0).c2w.numpy()
    got = est.c2w.numpy()
    assert stats.mode == "general"
    assert rotation_angle_deg(gt[-1, :3, :3], got[-1, :3, :3]) < 1.0
    assert _direction_error_deg(gt[-1, :3, 3], got[-1, :3, 3]) < 10.0
    assert stats.inliers[1:].min() >= 30 and stats.confidence.shape == (12,)


def test_a_zoom_past_the_search_range_from_the_key_frame_is_followed():
    """Points seen by every frame of a turning camera whose focal grows 1% per frame, to 1.6× at frame 47: the key
    frame stays frame 0, and its zoom leaves the 0.7–1.43× searched for one step. Each step's search is centred on the
    frame before's zoom, so the focal and the turn are recovered to the end (before, the zoom stopped at 1.43×, 10%
    short, and a rendered 48-frame zoom of the same size ended 1.9° off, reported reliable)."""
    rng = np.random.default_rng(0)
    width, height, focal, frames = 512, 288, 240.0, 48
    bearings = np.c_[rng.uniform(-0.5, 0.5, 300), rng.uniform(-0.3, 0.3, 300), np.ones(300)]
    zooms = 1.01 ** np.arange(frames)
    turns = np.stack([axis_angle_to_matrix(np.array([0.0, 0.002 * i, 0.0])) for i in range(frames)])
    cam = np.einsum("fij,nj->fni", np.transpose(turns, (0, 2, 1)), bearings)  # c2w rotations: world → camera is R^T
    pixels = cam[..., :2] / cam[..., 2:] * (focal * zooms)[:, None, None] + np.array([width / 2, height / 2])
    c2w, inliers, _, _, zoom = solve_rotation(Tracks(pixels), np.array([focal, focal, width / 2, height / 2]), 40)
    assert inliers.min() == 300
    assert np.abs(zoom / zooms - 1).max() < 0.002
    assert rotation_angle_deg(turns[-1], c2w[-1, :3, :3]) < 0.01


def test_estimation_pan_is_rotation_only_with_tensor_input():
    clip = render_synthetic_clip(make_preset("pan_left", 10, speed=2.0), 144, 256, seed=1)
    frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 255
    est, stats = estimate_trajectory(frames, torch.from_numpy(clip.masks)[:, None], fov_deg=FOV_OF_DEFAULTS)
    assert stats.mode == "rotation"
    gt = clip.trajectory.c2w.numpy()
    assert rotation_angle_deg(gt[-1, :3, :3], est.c2w[-1, :3, :3].numpy()) < 0.5
    assert est.c2w[-1, 0, 2] < -0.05  # looking left
    assert torch.count_nonzero(est.positions) == 0


def test_static_clip_is_static():
    clip = render_synthetic_clip(CameraTrajectory.static(6), 96, 160, seed=2)
    est, stats = estimate_trajectory(clip.frames, clip.masks)
    assert stats.mode == "static"
    assert torch.equal(est.c2w, torch.eye(4, dtype=torch.float64).repeat(6, 1, 1))


def test_a_bundle_adjustment_without_reliable_frames_gives_way_to_the_rotation_solve(monkeypatch):
    """A still, flickering generated background (the camera ablation's sample val-003 seed 1 of the proof's run 14:
    96x64, its camera adaptor is zero). The fine KLT window's tracks show no parallax there: a small turn. Tracked
    with the 21-px window alone they read as parallax, and with OpenCV 5.1 the bundle adjustment then left every
    frame unreliable with poses up to 71 degrees off (37 at the last frame; OpenCV 5.0 holds them); that outcome is
    made certain here by marking every frame of the adjustment unreliable. The rotation-only solve then holds the
    frames and reads a small turn; the verdict says the translation was not estimated. The first check also guards
    the parallax test's least-median fit: measured on the matches it was fitted to, it read parallax here."""
    data = np.load(os.path.join(REPO, "tests", "data", "still_flickering_background.npz"))
    clip = (data["frames"], data["masks"])
    est, stats = estimate_trajectory(*clip, fov_deg=float(data["fov_deg"]))
    assert stats.mode == "rotation" and not stats.quality.reasons
    assert rotation_angle_deg(np.eye(3)[None], est.relative_to(0).c2w.numpy()[:, :3, :3]).max() < 6.0

    solve = estimate_module.general_solution

    def unconstrained(*args, **kwargs):
        solution = solve(*args, **kwargs)
        return dict(solution, unreliable=list(range(1, len(solution["c2w"]))))

    monkeypatch.setattr(tracks_module, "FINE_LK", WIDE_LK)
    monkeypatch.setattr(estimate_module, "general_solution", unconstrained)
    with pytest.warns(UserWarning, match="rotation-only poses kept"):
        est, stats = estimate_trajectory(*clip, fov_deg=float(data["fov_deg"]))
    assert stats.mode == "rotation"
    assert stats.quality.verdict == "uncertain"  # the clip showed parallax: its translation is not estimated
    assert any("bundle adjustment left 15 of 15 frames unreliable" in reason for reason in stats.quality.reasons)
    turn = rotation_angle_deg(np.eye(3)[None], est.relative_to(0).c2w.numpy()[:, :3, :3])
    assert turn.max() < 6.0  # 37 degrees at the last frame before the fallback, with OpenCV 5.1


def test_all_foreground_mask_gives_static_with_warning():
    clip = demo_clip(4, 64, 96, preset="pan_right")
    with pytest.warns(UserWarning, match="background features"):
        est, stats = estimate_trajectory(clip.frames, np.ones((4, 64, 96), np.float32))
    assert len(est) == 4 and torch.equal(est.c2w[-1], torch.eye(4, dtype=torch.float64))
    assert stats.mode == "static" and stats.warnings and (stats.confidence == 0).all()


def test_mask_mismatch_errors_name_counts():
    frames = np.zeros((5, 32, 48, 3), np.uint8)
    with pytest.raises(ValueError, match="masks have 4 frames but the video has 5"):
        estimate_trajectory(frames, np.zeros((4, 32, 48)))
    with pytest.raises(ValueError, match="mask size 40x32 differs from the frame size 48x32"):
        estimate_trajectory(frames, np.zeros((5, 32, 40)))
    with pytest.raises(ValueError, match="uint8"):
        estimate_trajectory(frames.astype(np.float32))


def test_cli_roundtrip(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "dynascene_core.camera", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    result = run("preset", "dolly_in+pan_right", "--frames", "9", "--easing", "ease_in_out", "--out", "p.txt")
    assert result.returncode == 0, result.stderr
    loaded = CameraTrajectory.load(tmp_path / "p.txt")
    np.testing.assert_allclose(loaded.c2w.numpy(), make_preset("dolly_in+pan_right", 9, easing="ease_in_out")
                               .c2w.numpy(), atol=1e-8)
    clip = render_synthetic_clip(make_preset("truck_right", 8, speed=3.0), 144, 256, seed=0)
    write_video(tmp_path / "clip.mp4", clip.frames, fps=8)
    result = run("estimate", "clip.mp4", "--fov", f"{FOV_OF_DEFAULTS}", "--out", "est.txt")
    assert result.returncode == 0, result.stderr
    est = CameraTrajectory.load(tmp_path / "est.txt")
    assert len(est) == 8 and est.positions[-1, 0] > 0  # camera moved right
    report = json.loads((tmp_path / "est.quality.json").read_text())
    assert report["verdict"] in result.stdout and report["frames"] == 8 and report["focal_estimated"] is False
    assert (report["width"], report["height"]) == (256, 144)  # under --longer-side's default 512: as they are
    result = run("estimate", "clip.mp4", "--fov", f"{FOV_OF_DEFAULTS}", "--longer-side", "128", "--out", "small.txt")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "small.quality.json").read_text())
    assert (report["width"], report["height"]) == (128, 72) and "8 frames at 128x72" in result.stdout
    result = run("plot", "est.txt", "--out", "p.png", "--width", "256", "--height", "128")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "p.png").stat().st_size > 1000

def test_cli_reduces_the_video_and_its_mask_as_it_reads_them(tmp_path, capsys):
    """The command reduces each chunk it reads to --longer-side: the poses of the whole video estimated with
    longer_side in one call, and a mask of another size refused with both sizes named."""
    from dynascene_core.camera.__main__ import main
    from dynascene_core.video import matte_from_frames, read_video

    clip = render_synthetic_clip(make_preset("dolly_in+pan_right", 40, speed=0.5), 288, 512, seed=3)
    video, mask, poses = (str(tmp_path / name) for name in ("clip.mp4", "mask.mp4", "poses.txt"))
    write_video(video, clip.frames, fps=8)
    write_video(mask, np.repeat(clip.masks[..., None] * 255, 3, -1).astype(np.uint8), fps=8)
    assert main(["estimate", video, "--mask", mask, "--fov", f"{FOV_OF_DEFAULTS}", "--longer-side", "256",
                 "--out", poses]) == 0  # 40 frames: two chunks of each video
    expected, stats = estimate_trajectory(read_video(video).frames, matte_from_frames(read_video(mask).frames),
                                          fov_deg=FOV_OF_DEFAULTS, longer_side=256)
    np.testing.assert_allclose(CameraTrajectory.load(poses).c2w.numpy(), expected.c2w.numpy(), atol=1e-6)
    assert (stats.quality.width, stats.quality.height) == (256, 144)
    assert "40 frames at 256x144" in capsys.readouterr().out
    small_mask = str(tmp_path / "small_mask.mp4")
    write_video(small_mask, np.zeros((40, 144, 256, 3), np.uint8), fps=8)
    assert main(["estimate", video, "--mask", small_mask, "--out", poses]) == 1
    assert f"{small_mask} is 256x144 but {video} is 512x288" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's usage error, before the video is read
        main(["estimate", video, "--longer-side", "64", "--out", poses])
    assert "--longer-side: must be 0 or at least 128 pixels, got 64" in capsys.readouterr().err


def test_cli_reports_bad_files(tmp_path, capsys):
    from dynascene_core.camera.__main__ import main

    assert main(["plot", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x.png")]) == 1
    assert "missing.txt" in capsys.readouterr().err


def test_demo_command_writes_the_matte_that_estimate_reads(tmp_path):
    from dynascene_core.camera.__main__ import main
    from dynascene_core.video import matte_from_frames, read_video

    clip_path, mask_path, poses_path = (str(tmp_path / n) for n in ("clip.mp4", "clip_mask.mp4", "poses.txt"))
    assert main(["demo", "--frames", "6", "--width", "96", "--height", "64", "--out", clip_path,
                 "--mask-out", mask_path, "--poses-out", poses_path]) == 0
    expected = demo_clip(6, 64, 96, preset="orbit_left", seed=0).masks
    written = matte_from_frames(read_video(mask_path).frames)
    assert written.shape == expected.shape
    assert np.abs(written - expected).mean() < 0.02  # H.264 leaves the matte within a few grey levels
    assert 0.05 < written.mean() < 0.6  # there is an actor, and it is not everything
    assert main(["estimate", clip_path, "--mask", mask_path, "--out", str(tmp_path / "est.txt")]) == 0


def test_parallax_is_decided_by_any_pair_that_shows_it():
    """Residuals (frame, homography px, epipolar px) measured on a walking HoloLens clip (key frames 51-62 of
    the real-footage benchmark): the pair with the largest homography residual (frame 9) has a noisy epipolar
    fit (ratio 2.8 < 3) while the first pairs show clear parallax (ratio ≥ 3.9). Judged on the largest alone,
    the clip was taken for a pure rotation and came out 10.9° wrong; with the frame-2 pair deciding, 0.8°."""
    walking = [(1, 1.10, 0.28), (2, 1.15, 0.29), (3, 1.02, 0.52), (4, 0.93, 0.37), (5, 1.05, 0.60),
               (6, 0.97, 0.45), (7, 1.06, 0.63), (8, 1.40, 0.60), (9, 1.41, 0.51)]
    assert parallax_pair(walking, 0.6, 3.0) == (2, True)
    assert parallax_pair(walking[2:], 0.6, 3.0) == (0, False)  # without the first two pairs: none shows it
    assert parallax_pair([(1, 0.5, 0.1), (2, 0.55, 0.1)], 0.6, 3.0) == (0, False)  # under 0.6 px: a rotation
    assert parallax_pair([(1, 0.7, 0.1), (3, 2.0, 0.5), (5, 2.5, 0.9)], 0.6, 3.0) == (3, True)


def test_a_slow_travel_under_a_turn_is_not_taken_for_a_rotation():
    """The synthetic benchmark's ``random_2`` (24 frames at 512×288, 93° FOV): a turn with 0.2 units of travel, whose
    homography residual against frame 0 reaches 0.73-0.90 px at frames 18-21. MAGSAC's fundamental matrix settled
    there on a nearly degenerate fit leaving 0.25-0.30 px, so no pair showed three times the epipolar residual; the
    clip was solved as a rotation 1.4° off with its travel missed, and reported reliable. The epipolar residual is
    checked against the one the true cameras leave on the same tracks, F = K^-T [t]x R K^-1 (about 0.06 px)."""
    trajectory = random_smooth_trajectory(24, seed=2)
    clip = render_synthetic_clip(trajectory, 288, 512, seed=19)
    human = np.stack([cv2.dilate(mask, np.ones((21, 21), np.uint8)) for mask in (clip.masks > 0.5).astype(np.uint8)])
    gray = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in clip.frames])
    tracks = track_points(gray, np.where(human > 0, 0, 255).astype(np.uint8), 600, 0.5)
    common = tracks.valid[0] & tracks.valid[21]
    a, b = tracks.points[0, common], tracks.points[21, common]
    fx, fy, cx, cy = trajectory.intrinsics[0].numpy() * [512, 288, 512, 288]
    k_inv = np.linalg.inv(np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]))
    relative = np.linalg.inv(trajectory.c2w.numpy()[21]) @ trajectory.c2w.numpy()[0]  # frame 0's camera → 21's
    tx, ty, tz = relative[:3, 3]
    fundamental = k_inv.T @ np.array([[0, -tz, ty], [tz, 0, -tx], [-ty, tx, 0]]) @ relative[:3, :3] @ k_inv
    lines_b, lines_a = np.c_[a, np.ones(len(a))] @ fundamental.T, np.c_[b, np.ones(len(b))] @ fundamental
    distance = np.abs(np.sum(np.c_[b, np.ones(len(b))] * lines_b, 1))
    true_px = float(np.median(0.5 * (distance / np.hypot(*lines_b[:, :2].T) + distance / np.hypot(*lines_a[:, :2].T))))
    homography_px, epipolar_px = parallax_residuals(a, b)
    assert true_px < 0.1 and epipolar_px < 2 * true_px  # was 0.30 px
    assert homography_px > 3 * epipolar_px
    fov = float(np.degrees(2 * np.arctan(0.5 / trajectory.intrinsics[0, 0].item())))
    est, stats = estimate_trajectory(clip.frames, clip.masks, fov_deg=fov)
    truth, got = trajectory.relative_to(0).c2w.numpy(), est.c2w.numpy()
    assert stats.mode == "general" and stats.quality.verdict == "reliable"  # was a rotation, reliable
    assert rotation_angle_deg(truth[-1, :3, :3], got[-1, :3, :3]) < 0.2  # was 1.37°
    assert _direction_error_deg(truth[-1, :3, 3], got[-1, :3, 3]) < 3.0


def _wall_clip(c2w: np.ndarray, focal: float = 220.0, size=(180, 320), depth: float = 2.0, seed: int = 5,
               textured: float | None = None):
    """Frames ``(F, H, W, 3)`` of a textured wall, the plane z = ``depth`` of the world, seen by cameras ``c2w``
    ``(F, 4, 4)`` (OpenCV axes), rendered by the plane's homography: wall point (X, Y) projects as
    K [r1 r2 R·(0, 0, depth) + t] (X, Y, 1) with world-to-camera [R | t]. ``textured``: only the square
    |X|, |Y| ≤ that carries texture (a poster on a blank wall); None: all of it."""
    height, width = size
    rng = np.random.default_rng(seed)
    texels = 200  # per unit of wall
    texture = np.full((1200, 1600, 3), 128, np.uint8)
    for _ in range(2500):
        x, y, w, h = rng.integers(0, 1600), rng.integers(0, 1200), rng.integers(4, 40), rng.integers(4, 40)
        texture[y:y + h, x:x + w] = rng.integers(0, 256, 3)
    if textured is not None:
        blank = np.ones(texture.shape[:2], bool)
        half = int(textured * texels)
        blank[600 - half:600 + half, 800 - half:800 + half] = False
        texture[blank] = 128
    texel_to_wall = np.array([[1 / texels, 0, -800 / texels], [0, 1 / texels, -600 / texels], [0, 0, 1]])
    k = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    frames = []
    for pose in c2w:
        w2c = np.linalg.inv(pose)
        plane = np.c_[w2c[:3, 0], w2c[:3, 1], w2c[:3, :3] @ [0, 0, depth] + w2c[:3, 3]]
        frames.append(cv2.warpPerspective(texture, k @ plane @ texel_to_wall, (width, height),
                                          flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames), float(np.degrees(2 * np.arctan(width / 2 / focal)))


def _circling_the_wall(count: int = 12) -> np.ndarray:
    """Cameras ``(count, 4, 4)`` circling the wall point (0, 0, 2) of :func:`_wall_clip` through 20°, facing it."""
    angle = np.radians(np.linspace(0, 20, count))
    orbit = np.tile(np.eye(4), (count, 1, 1))
    orbit[:, :3, :3] = axis_angle_to_matrix(np.c_[np.zeros(count), -angle, np.zeros(count)])
    orbit[:, :3, 3] = np.c_[2 * np.sin(angle), np.zeros(count), 2 - 2 * np.cos(angle)]
    return orbit


def test_a_camera_travelling_past_a_wall_is_not_taken_for_a_rotation():
    """A homography fits a plane under any motion, so the parallax test sees none when the background is a wall;
    the camera circling a point on it (as a phone circles a mounted fox head, the NeRF capture of the real-footage
    benchmark: 33° off when solved as a rotation) is then solved as general motion. A pan of the same wall stays a
    rotation."""
    orbit = _circling_the_wall()
    frames, fov = _wall_clip(orbit)
    est, stats = estimate_trajectory(frames, None, fov_deg=fov)
    got = est.c2w.numpy()
    assert stats.mode == "general"  # before: a rotation 18.5° off, 4.3 px, unreliable
    # the second start (the plane's other decomposition) ends 20° away with under half the inlier observations: no
    # rival, so no doubt
    assert stats.quality.verdict == "reliable" and stats.quality.start_disagreement_deg is None
    assert rotation_angle_deg(orbit[-1, :3, :3], got[-1, :3, :3]) < 0.5
    assert _direction_error_deg(orbit[-1, :3, 3], got[-1, :3, 3]) < 3.0
    pan = orbit.copy()
    pan[:, :3, 3] = 0
    frames, fov = _wall_clip(pan)
    est, stats = estimate_trajectory(frames, None, fov_deg=fov)
    assert stats.mode == "rotation"
    assert rotation_angle_deg(pan[-1, :3, :3], est.c2w.numpy()[-1, :3, :3]) < 0.3


def test_a_turn_kept_over_parallax_it_does_not_explain_is_not_reported_reliable():
    """The circled wall's rotation fit leaves about 4 px, over the 0.6 px at which the fast method solves general
    motion too, and the general solution replaces it (reliable, test above). Where that solve does not halve the
    turn's error (as on a walk up stairs, 7-17 deg between frames: read as a turn 1-7 deg off) or finds no solution,
    the turn is kept and the report says the camera may have travelled (at least uncertain); the same clip solved is
    reliable."""
    orbit = _circling_the_wall()
    frames, fov = _wall_clip(orbit)
    _, solved = estimate_trajectory(frames, None, fov_deg=fov)
    assert solved.mode == "general" and solved.quality.verdict == "reliable"
    with patch("dynascene_core.camera.estimate._plane_fits_better", return_value=False), \
            pytest.warns(UserWarning, match="may also have travelled"):
        _, kept = estimate_trajectory(frames, None, fov_deg=fov)
    assert kept.mode == "rotation" and kept.quality.verdict != "reliable"  # 4.3 px: unreliable by that error too
    assert any(f"a turn leaves {kept.quality.reprojection_px:.2f} px, over 0.60 px" in reason
               for reason in kept.quality.reasons)
    with patch("dynascene_core.camera.estimate.adjust_start", return_value=None), \
            pytest.warns(UserWarning, match="general motion could not be solved"):  # no general solution at all
        _, unsolved = estimate_trajectory(frames, None, fov_deg=fov)
    assert unsolved.mode == "rotation" and unsolved.quality.verdict != "reliable"
    assert any("general motion could not be solved although the tracks show parallax" in reason
               for reason in unsolved.quality.reasons)


def test_tracks_bunched_on_a_small_part_of_the_picture_make_a_clip_uncertain():
    """The circled wall of the test above with texture only on a poster at the centre (the rest blank, as a can on a
    plain sheet; the estimate then ends about 20° off at 0.7 px, nothing else amiss): the tracks cover about a third
    of the picture's cells and the verdict says so; the fully textured wall's tracks cover all and stay reliable."""
    orbit = _circling_the_wall()
    full, fov = _wall_clip(orbit)
    poster, _ = _wall_clip(orbit, textured=0.45)  # 0.9 of the 2.9 × 1.6 wall units in view
    _, stats = estimate_trajectory(full, None, fov_deg=fov)
    assert stats.quality.coverage > 0.8 and stats.quality.verdict == "reliable"
    _, stats = estimate_trajectory(poster, None, fov_deg=fov)
    assert stats.quality.coverage < 0.4
    assert stats.quality.verdict == "uncertain"
    assert len(stats.quality.reasons) == 1 and "cover only" in stats.quality.reasons[0]


def test_a_long_clip_is_tracked_on_matched_features_and_on_klt_only_when_they_leave_it_in_doubt():
    """KLT tracks drift more as a clip grows, so the fast method tracks a 40-frame orbit on SIFT matches, with 32 points
    per frame in the adjustment, and the 24-frame start of the same orbit on KLT tracks, both reliable. When the
    matches leave the long clip in doubt (none found here), its KLT tracks are tried, with as many points: uncertain
    for their length, and checked by a second start all the same (a gap made 10° here is a doubt of its own)."""
    clip = demo_clip(40, 144, 256, preset="orbit_left")
    fov = float(np.degrees(2 * np.arctan(0.5 / np.asarray(clip.trajectory.intrinsics)[0, 0])))
    points_asked = []

    def recorded(*args, **kwargs):
        points_asked.append(kwargs["max_points"])
        return bundle_adjust(*args, **kwargs)

    with patch.object(estimate_module, "track_points", side_effect=AssertionError("KLT")), \
            patch.object(solutions_module, "bundle_adjust", side_effect=recorded):
        trajectory, stats = estimate_trajectory(clip.frames, clip.masks, fov)
    assert stats.mode == "general" and stats.quality.tracker == "sift" and stats.quality.verdict == "reliable"
    assert 32 * 40 in points_asked
    truth = clip.trajectory.relative_to(0).c2w.numpy()
    assert rotation_angle_deg(truth[-1, :3, :3], trajectory.c2w.numpy()[-1, :3, :3]) < 0.5
    with patch.object(estimate_module, "match_tracks", side_effect=AssertionError("SIFT")):
        _, short = estimate_trajectory(clip.frames[:24], clip.masks[:24], fov)
    assert short.quality.tracker == "klt" and short.quality.verdict == "reliable"

    def no_matches(gray, *args, **kwargs):
        return Tracks(np.full((len(gray), 0, 2), np.nan))

    points_asked.clear()
    with patch.object(estimate_module, "match_tracks", side_effect=no_matches), \
            patch.object(estimate_module, "rotation_gap", return_value=10.0), \
            patch.object(solutions_module, "bundle_adjust", side_effect=recorded):
        _, fallen_back = estimate_trajectory(clip.frames, clip.masks, fov)
    assert fallen_back.quality.tracker == "klt" and fallen_back.quality.verdict == "uncertain"
    assert 32 * 40 in points_asked  # the KLT tracks of a long clip are adjusted with as many points per frame
    first, second = fallen_back.quality.reasons
    assert first.startswith("KLT tracks over more than 32 frames drift")
    assert second.startswith("a second initial pair ends up to 10.0 deg away")


def test_the_accurate_method_tries_both_poses_a_circled_wall_allows():
    """Two views of a plane fit two relative poses. On the circled wall's SIFT tracks the essential matrix of frames
    (0, 11) starts in the wrong one: its adjustment ends 20° off at 0.17 px (reported reliable before the accurate
    method also started from the plane's poses), with the points of a quarter of the observations behind the
    cameras; the plane's pose ends at the truth with almost all of them in front."""
    orbit = _circling_the_wall()
    frames, fov = _wall_clip(orbit)
    height, width = frames.shape[1:3]
    focal = width / 2 / np.tan(np.radians(fov) / 2)
    k = np.array([focal, focal, width / 2, height / 2])
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    tracks = match_tracks(gray, np.full(gray.shape, 255, np.uint8), SIFT_FEATURES)
    common = tracks.valid[0] & tracks.valid[11]
    poses = plane_poses(tracks.points[0, common], tracks.points[11, common], k)
    assert poses
    ends = {}
    for name, pose in [("essential", None)] + [(f"plane {i}", p) for i, p in enumerate(poses)]:
        w2c, points, has_point, solved = solve_general(tracks, k, 11, 1, 200, pose)
        result = bundle_adjust(tracks.points, w2c, points, has_point, solved, k, width, height, refine_focal=False,
                               rounds=3, max_points=3000)
        turned = result.w2c[0, :3, :3] @ result.w2c[-1, :3, :3].T  # the last camera's rotation in frame 0's axes
        ends[name] = (float(rotation_angle_deg(orbit[-1, :3, :3], turned)), agreeing_share(tracks.points, result,
                                                                                            solved, k))
    assert ends["essential"][0] > 10 and ends["essential"][1] < 0.8
    assert min(angle for angle, share in ends.values() if share > 0.95) < 0.3
    est, stats = estimate_trajectory(frames, None, fov_deg=fov, method="accurate")
    assert rotation_angle_deg(orbit[-1, :3, :3], est.c2w.numpy()[-1, :3, :3]) < 0.3
    assert stats.quality.verdict == "reliable" and stats.quality.inlier_ratio > 0.9


def test_frames_larger_than_longer_side_are_estimated_reduced():
    """``longer_side``: the frames and the mask are reduced first (area averaging; a reduced pixel is human where any
    part of it was), the poses are the clip's, and the report gives the size estimated at."""
    clip = render_synthetic_clip(make_preset("dolly_in+pan_right", 10, speed=2.0), 288, 512, seed=3)
    est, stats = estimate_trajectory(clip.frames, clip.masks, fov_deg=FOV_OF_DEFAULTS, longer_side=256)
    assert (stats.quality.width, stats.quality.height) == (256, 144)
    assert "10 frames at 256x144" in stats.quality.summary()
    # the same reduction written out: each pixel the mean of a 2 x 2 block (to rounding), a block human where any
    # of its four pixels is
    small = np.stack([cv2.resize(f, (256, 144), interpolation=cv2.INTER_AREA) for f in clip.frames])
    block_means = clip.frames.reshape(10, 144, 2, 256, 2, 3).astype(np.float64).mean(axis=(2, 4))
    assert np.abs(small - block_means).max() <= 0.5
    human = clip.masks.reshape(10, 144, 2, 256, 2).max(axis=(2, 4)) > 0
    expected, _ = estimate_trajectory(small, human, fov_deg=FOV_OF_DEFAULTS)
    np.testing.assert_array_equal(est.c2w.numpy(), expected.c2w.numpy())
    truth = clip.trajectory.relative_to(0).c2w.numpy()
    assert rotation_angle_deg(est.c2w.numpy()[-1, :3, :3], truth[-1, :3, :3]) < 0.5
    # frames no larger than longer_side are estimated as they are
    _, kept = estimate_trajectory(clip.frames[:4], clip.masks[:4], fov_deg=FOV_OF_DEFAULTS, longer_side=1024)
    assert (kept.quality.width, kept.quality.height) == (512, 288)
    with pytest.raises(ValueError, match="longer_side must be None or at least 128 px, got 64"):
        estimate_trajectory(clip.frames, longer_side=64)
