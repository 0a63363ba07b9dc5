"""A write killed halfway leaves the previous file (or none), never a truncated one: videos, pose files,
weight files and images, with the kill injected by monkeypatch."""

import os

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from dynascene_core import io_utils
from dynascene_core.camera import CameraTrajectory, make_preset
from dynascene_core.checkpoints.io import read_weights, write_safetensors_atomic
from dynascene_core.video import read_video, write_image, write_video


class Killed(BaseException):
    """Stands in for SIGKILL/Ctrl-C: a BaseException, so no ``except Exception`` swallows it."""


def _frames(count, value):
    return np.full((count, 32, 48, 3), value, np.uint8)


def _kill_after_frames(monkeypatch, frames_before_kill):
    """Make ffmpeg's writer die after it has been sent ``frames_before_kill`` frames (it has written part of
    the file by then)."""
    real = imageio_ffmpeg.write_frames

    def dying_writer(*args, **kwargs):
        writer = real(*args, **kwargs)
        writer.send(None)  # start ffmpeg, as write_video's own first send does for us
        sent = 0
        try:
            while True:
                frame = yield
                if sent == frames_before_kill:
                    raise Killed()
                writer.send(frame)
                sent += 1
        finally:
            writer.close()

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", dying_writer)


def _only_file(folder, name):
    assert sorted(os.listdir(folder)) == [name], "a temporary file was left behind"


def test_video_killed_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "background.mp4"
    write_video(path, _frames(3, 40), fps=8)
    before = path.read_bytes()
    _kill_after_frames(monkeypatch, 4)
    with pytest.raises(Killed):
        write_video(path, _frames(12, 200), fps=8)
    assert path.read_bytes() == before
    video = read_video(path)
    assert len(video) == 3 and abs(int(video.frames.mean()) - 40) <= 2
    _only_file(tmp_path, "background.mp4")


def test_video_killed_mid_write_leaves_no_file(tmp_path, monkeypatch):
    _kill_after_frames(monkeypatch, 4)
    with pytest.raises(Killed):
        write_video(tmp_path / "composite.mp4", _frames(12, 200), fps=8)
    assert os.listdir(tmp_path) == []


def test_video_written_without_a_kill_is_complete(tmp_path, monkeypatch):
    """The same wrapper with no kill in reach writes the whole video (so the tests above test the kill)."""
    _kill_after_frames(monkeypatch, 100)
    write_video(tmp_path / "v.mp4", _frames(12, 200), fps=8)
    assert len(read_video(tmp_path / "v.mp4")) == 12
    _only_file(tmp_path, "v.mp4")


def _kill_before_rename(monkeypatch):
    """Kill after the content is in the temporary file, before it is renamed over the target."""
    def dying_fsync(fd):
        raise Killed()

    monkeypatch.setattr(io_utils.os, "fsync", dying_fsync)


def test_pose_file_killed_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "poses.txt"
    make_preset("pan_left", 5).save(path)
    before = path.read_text()
    _kill_before_rename(monkeypatch)
    with pytest.raises(Killed):
        make_preset("dolly_in", 9).save(path)
    monkeypatch.undo()
    assert path.read_text() == before and len(CameraTrajectory.load(path)) == 5
    _only_file(tmp_path, "poses.txt")


def test_pose_file_killed_mid_write_leaves_no_file(tmp_path, monkeypatch):
    _kill_before_rename(monkeypatch)
    with pytest.raises(Killed):
        make_preset("dolly_in", 9).save(tmp_path / "poses.txt", format="tum")
    assert os.listdir(tmp_path) == []


def test_weights_and_images_killed_mid_write_keep_the_previous_file(tmp_path, monkeypatch):
    weights, image = tmp_path / "w.safetensors", tmp_path / "camera.png"
    write_safetensors_atomic({"a": torch.zeros(3)}, weights)
    write_image(image, _frames(1, 10)[0])
    old_weights, old_image = weights.read_bytes(), image.read_bytes()
    _kill_before_rename(monkeypatch)
    with pytest.raises(Killed):
        write_safetensors_atomic({"a": torch.ones(300)}, weights)
    with pytest.raises(Killed):
        write_image(image, _frames(1, 250)[0])
    monkeypatch.undo()
    assert weights.read_bytes() == old_weights and torch.equal(read_weights(weights).tensors["a"], torch.zeros(3))
    assert image.read_bytes() == old_image
    assert sorted(os.listdir(tmp_path)) == ["camera.png", "w.safetensors"]


def test_atomic_open_replaces_only_on_success(tmp_path):
    path = tmp_path / "run.json"
    with io_utils.atomic_open(path) as handle:
        handle.write("first")
    with pytest.raises(RuntimeError):
        with io_utils.atomic_open(path) as handle:
            handle.write("second, half")
            raise RuntimeError("failed while writing")
    assert path.read_text() == "first"
    with io_utils.atomic_open(path, "wb") as handle:
        handle.write(b"third")
    assert path.read_bytes() == b"third"
    _only_file(tmp_path, "run.json")
