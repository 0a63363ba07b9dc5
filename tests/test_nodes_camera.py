"""Camera nodes executed without a host, on small inputs."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import rolling_shutter_clips as clips
import torch
from PIL import Image

from dynascene_core.camera import demo_clip, make_preset
from nodes import camera as cam
from nodes import host


@pytest.fixture(autouse=True)
def standalone_dirs(tmp_path, monkeypatch):
    dirs = {name: str(tmp_path / name) for name in ("input", "output", "temp", "models")}
    for path in dirs.values():
        os.makedirs(path)
    monkeypatch.setattr(host, "STANDALONE_DIRS", dirs)
    return dirs


def test_preset_alone_and_combined():
    (single,) = cam.CameraPreset().make("dolly_in", 9, 1.0, "linear")
    (both,) = cam.CameraPreset().make("dolly_in", 9, 1.0, "linear", with_preset="pan_right")
    assert len(single) == 9 and len(both) == 9
    assert torch.allclose(both.c2w, make_preset(["dolly_in", "pan_right"], 9).c2w)
    assert both.positions[-1, 2] > 0.1  # moved forward
    assert not torch.allclose(single.c2w[-1, :3, :3], both.c2w[-1, :3, :3])  # and turned


def test_concatenate_resample_trim_and_speed():
    a = make_preset("pan_left", 6)
    b = make_preset("dolly_in", 5)
    chained, frames = cam.ConcatenateCameras().concatenate(a, b, True)
    stacked, stacked_frames = cam.ConcatenateCameras().concatenate(a, b, False)
    assert (frames, stacked_frames) == (10, 11)
    assert torch.allclose(chained.c2w[5], a.c2w[5])

    fitted, n = cam.ResampleCamera().fit(chained, "resample", 24, 0)
    assert n == 24 and torch.allclose(fitted.c2w[-1], chained.c2w[-1])
    video = torch.zeros(7, 8, 8, 3)
    matched, n = cam.ResampleCamera().fit(chained, "resample", 24, 0, match_images=video)
    assert n == 7
    trimmed, n = cam.ResampleCamera().fit(chained, "trim", 4, 3)
    assert n == 4 and torch.equal(trimmed.c2w, chained.c2w[3:7])
    with pytest.raises(ValueError, match="only 10 frames"):
        cam.ResampleCamera().fit(chained, "trim", 8, 3)

    (faster,) = cam.ScaleCameraSpeed().scale(b, 2.0)
    assert torch.allclose(faster.positions[-1], 2 * b.positions[-1], atol=1e-9)


def test_save_then_load_pose_file_from_the_input_folder(standalone_dirs):
    camera = make_preset("orbit_right", 5)
    (path,) = cam.SaveCameraPoseFile().save(camera, "designs/orbit", "realestate10k")["result"]
    assert path == os.path.join(standalone_dirs["output"], "designs", "orbit_00001_.txt")
    (second,) = cam.SaveCameraPoseFile().save(camera, "designs/orbit", "realestate10k")["result"]
    assert second.endswith("orbit_00002_.txt")

    os.replace(path, os.path.join(standalone_dirs["input"], "orbit.txt"))
    os.makedirs(os.path.join(standalone_dirs["input"], "poses"))
    os.replace(second, os.path.join(standalone_dirs["input"], "poses", "again.txt"))
    assert cam.LoadCameraPoseFile.INPUT_TYPES()["required"]["pose_file"][0] == ["orbit.txt", "poses/again.txt"]
    loaded, frames = cam.LoadCameraPoseFile().load("orbit.txt")
    assert frames == 5 and torch.allclose(loaded.c2w, camera.c2w, atol=1e-6)
    nested, _ = cam.LoadCameraPoseFile().load("poses/again.txt")
    assert torch.allclose(nested.c2w, camera.c2w, atol=1e-6)
    assert cam.LoadCameraPoseFile.IS_CHANGED("orbit.txt") == cam.LoadCameraPoseFile.IS_CHANGED("poses/again.txt")
    with open(os.path.join(standalone_dirs["input"], "orbit.txt"), "a") as handle:
        handle.write("\n")
    assert cam.LoadCameraPoseFile.IS_CHANGED("orbit.txt") != cam.LoadCameraPoseFile.IS_CHANGED("poses/again.txt")

    with pytest.raises(FileNotFoundError, match="nope.txt"):
        cam.LoadCameraPoseFile().load("nope.txt")
    with pytest.raises(ValueError, match="outside the output folder"):
        cam.SaveCameraPoseFile().save(camera, "../escape", "realestate10k")


@pytest.fixture
def outside_pose_file(standalone_dirs, tmp_path):
    """A valid pose file next to (not inside) the input folder, plus a symlink to it from inside."""
    outside = tmp_path / "secret.txt"
    make_preset("pan_left", 3).save(str(outside))
    os.symlink(outside, os.path.join(standalone_dirs["input"], "link.txt"))
    os.symlink(tmp_path, os.path.join(standalone_dirs["input"], "linked_dir"))
    return str(outside)


@pytest.mark.parametrize("name", ["../secret.txt", "sub/../../secret.txt", "ABSOLUTE", "link.txt",
                                  "linked_dir/secret.txt"])
def test_pose_file_outside_the_input_folder_is_refused(outside_pose_file, name):
    name = outside_pose_file if name == "ABSOLUTE" else name
    for call in (cam.LoadCameraPoseFile().load, cam.LoadCameraPoseFile.IS_CHANGED):
        with pytest.raises(ValueError, match="not inside ComfyUI's input folder"):
            call(name)


@pytest.mark.parametrize("name", ["../dynascene/x.safetensors", "/etc/passwd", "a/../../x.pth"])
def test_model_file_names_leaving_the_folder_are_refused(name):
    with pytest.raises(ValueError, match="must be a file inside the 'rvm' model folder"):
        host.resolve_model_file("rvm", name, "RVM weights")


def test_preview_returns_the_plot_and_shows_it(standalone_dirs):
    result = cam.PreviewCamera().preview(make_preset("truck_right", 6), 160, 96)
    (image,) = result["result"]
    assert image.shape == (1, 96, 160, 3) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.std()) > 0.01
    (entry,) = result["ui"]["images"]
    assert entry["type"] == "temp"
    shown = np.asarray(Image.open(os.path.join(standalone_dirs["temp"], entry["subfolder"], entry["filename"])))
    assert np.array_equal(shown, np.round(image[0].numpy() * 255).astype(np.uint8))


def test_estimate_camera_from_video_with_mask():
    clip = demo_clip(num_frames=8, height=96, width=160, preset="pan_right")
    frames = torch.from_numpy(clip.frames).float() / 255.0  # IMAGE (F, H, W, 3)
    mask = torch.from_numpy(clip.masks.astype(np.float32)).reshape(8, 96, 160)
    result = cam.EstimateCameraFromVideo().estimate(frames, 65.0, False, human_mask=mask)
    camera, report = result["result"]
    assert len(camera) == 8 and "rotation motion" in report and report.split(":")[0] in ("reliable", "uncertain")
    assert result["ui"]["text"] == [report]
    truth = clip.trajectory
    turned = torch.rad2deg(torch.acos(((camera.c2w[-1, :3, :3].trace() - 1) / 2).clamp(-1, 1)))
    true_turn = torch.rad2deg(torch.acos(((truth.c2w[-1, :3, :3].trace() - 1) / 2).clamp(-1, 1)))
    assert abs(float(turned - true_turn)) < 1.0
    assert "8 frames at 160x96" in report  # the default longer side, 512, leaves smaller frames as they are
    camera, report = cam.EstimateCameraFromVideo().estimate(frames, 65.0, False, human_mask=mask,
                                                           longer_side=128)["result"]
    assert "8 frames at 128x77" in report
    turned = torch.rad2deg(torch.acos(((camera.c2w[-1, :3, :3].trace() - 1) / 2).clamp(-1, 1)))
    assert abs(float(turned - true_turn)) < 1.0
    with pytest.raises(ValueError, match="human_mask: has 3 frames but the video has 8"):
        cam.EstimateCameraFromVideo().estimate(frames, 65.0, False, human_mask=mask[:3])


def test_estimate_camera_rolling_shutter_and_method_widgets():
    """A portrait rolling-shutter clip (rows read top to bottom, then the picture turned a quarter clockwise, as a
    phone held upright records): the readout is found along the columns, turned off, or taken as given."""
    shaky = clips.shaky_trajectory(16)
    frames, mask, _ = clips.turned_clip(shaky, 144, 256, 0.7, quarter_turns=1)
    frames, mask = torch.from_numpy(frames).float() / 255.0, torch.from_numpy(mask)  # (F, 256, 144, 3), (F, 256, 144)
    fov = clips.fov_of(shaky)
    node = cam.EstimateCameraFromVideo()
    found = re.search(r"rolling shutter ([0-9.]+) frame, read (\w+)", node.estimate(frames, fov, False,
                                                                                    human_mask=mask)["result"][1])
    assert abs(float(found[1]) - 0.7) <= 0.15 and found[2] == "left"
    off = node.estimate(frames, fov, False, human_mask=mask, rolling_shutter="off")["result"][1]
    assert "rolling shutter" not in off
    fixed = node.estimate(frames, fov, False, human_mask=mask, rolling_shutter="fixed", readout_frames=0.4,
                          readout_direction="right")["result"][1]
    assert "rolling shutter 0.40 frame, read right" in fixed
    assert set(cam.EstimateCameraFromVideo.INPUT_TYPES()["optional"]["method"][0]) == {"fast", "accurate"}


def test_estimate_camera_method_reaches_the_estimator(monkeypatch):
    clip = demo_clip(num_frames=6, height=72, width=128, preset="dolly_in")
    frames = torch.from_numpy(clip.frames).float() / 255.0
    seen = []
    real = cam.estimate_trajectory

    def recording(*args, **kwargs):
        seen.append(kwargs["method"])
        return real(*args, **kwargs)

    monkeypatch.setattr(cam, "estimate_trajectory", recording)
    for method in ("accurate", "fast"):
        camera, report = cam.EstimateCameraFromVideo().estimate(frames, 65.0, False, method=method)["result"]
        assert len(camera) == 6 and report.split(":")[0] in ("reliable", "uncertain", "unreliable")
    assert seen == ["accurate", "fast"]


def test_estimate_camera_checks_cancel_per_frame_and_stops(monkeypatch):
    """Cancel (the host's interrupt check, faked here) is honoured during estimation, not only before it."""
    clip = demo_clip(num_frames=8, height=96, width=160, preset="pan_right")
    frames = torch.from_numpy(clip.frames).float() / 255.0
    calls = []

    def interrupted():
        calls.append(len(calls))
        if len(calls) == 4:  # the start, then after tracked frames 1, 2, 3
            raise InterruptedError("cancelled")

    monkeypatch.setattr(host, "check_interrupted", interrupted)
    with pytest.raises(InterruptedError):
        cam.EstimateCameraFromVideo().estimate(frames, 65.0, False)
    assert len(calls) == 4

    calls.clear()
    monkeypatch.setattr(host, "check_interrupted", lambda: calls.append(1))
    cam.EstimateCameraFromVideo().estimate(frames, 65.0, False)
    assert len(calls) >= 1 + 8 + 1  # start, every tracked frame, at least one pose solve


def test_plucker_preview_shows_directions_and_moments():
    from nodes.camera import PluckerEmbeddingPreview

    camera = make_preset("truck_right", 5)
    (images,) = PluckerEmbeddingPreview().embed(camera, 32, 16, 0)
    assert images.shape == (5, 16, 64, 3)
    # the reference camera has zero moments: its right half is mid-grey
    assert torch.allclose(images[0, :, 32:], torch.full_like(images[0, :, 32:], 0.5))
    assert (images[-1, :, 32:] - 0.5).abs().max() > 0.1
    # centre ray points along +z: blue 1, red/green mid-grey
    centre = images[0, 8, 16]
    assert centre[2] > 0.99 and abs(centre[0] - 0.5) < 0.05 and abs(centre[1] - 0.5) < 0.05
    with pytest.raises(ValueError, match="outside the camera's 5 frames"):
        PluckerEmbeddingPreview().embed(camera, 32, 16, 5)
