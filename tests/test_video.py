import numpy as np
import pytest
import torch

from dynascene_core.video import (VideoError, iter_frames, iter_video, read_video, to_tensor, to_uint8,
                                  write_frame_folder, write_video)


def _gradient_frames(n=10, h=48, w=64):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 4 + i * 10) % 256, (y * 5) % 256, np.full_like(x, 128)], -1)
                     for i in range(n)]).astype(np.uint8)


def test_mp4_round_trip_is_close_and_keeps_fps(tmp_path):
    frames = _gradient_frames()
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=12, quality=10)
    video = read_video(path)
    assert video.frames.shape == frames.shape and video.fps == pytest.approx(12)
    assert np.abs(video.frames.astype(int) - frames.astype(int)).mean() < 4
    chunks = list(iter_video(path, chunk=3, stride=2))
    assert [len(c) for c in chunks] == [3, 2]
    assert read_video(path, max_frames=4, stride=2).fps == pytest.approx(6)


def test_frame_folder_round_trip_is_exact(tmp_path):
    frames = _gradient_frames(4)
    write_frame_folder(tmp_path / "f", frames)
    assert np.array_equal(read_video(tmp_path / "f").frames, frames)


def test_frames_of_a_folder_or_a_file_come_in_chunks(tmp_path):
    frames = _gradient_frames(9)
    write_frame_folder(tmp_path / "f", frames)
    chunks = list(iter_frames(tmp_path / "f", chunk=2, stride=2, max_frames=4))  # frames 0, 2, 4, 6
    assert [len(c) for c in chunks] == [2, 2] and np.array_equal(np.concatenate(chunks), frames[0:8:2])
    write_video(tmp_path / "clip.mp4", frames, fps=8)
    assert [len(c) for c in iter_frames(tmp_path / "clip.mp4", chunk=4)] == [4, 4, 1]
    write_frame_folder(tmp_path / "g", _gradient_frames(3))
    write_frame_folder(tmp_path / "g", _gradient_frames(1, 40, 64), prefix="late")
    with pytest.raises(VideoError, match=r"late.*size \(64, 40\) differs from the first frame's \(64, 48\)"):
        list(iter_frames(tmp_path / "g", chunk=2))


def test_tensor_conversions_invert():
    frames = _gradient_frames(2)
    t = to_tensor(frames)
    assert t.shape == (2, 3, 48, 64) and t.dtype == torch.float32
    assert np.array_equal(to_uint8(t), frames)


def test_bad_inputs_name_the_path(tmp_path):
    with pytest.raises(VideoError, match="missing.mp4: no such file"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoError, match="junk.mp4"):
        read_video(tmp_path / "junk.mp4")
    with pytest.raises(VideoError, match=r"expected \(F, H, W, 3\)"):
        write_video(tmp_path / "x.mp4", np.zeros((0, 8, 8, 3), np.uint8), fps=8)
