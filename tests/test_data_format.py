"""The clip-folder dataset format: writing, reading back, validation errors naming the clip, motion score."""

import json
import os

import cv2
import numpy as np
import pytest

from dynascene_core.camera import make_preset, render_synthetic_clip
from dynascene_core.data import (ClipError, ClipRecord, clip_files, motion_intensity, read_clip_frames, read_manifest,
                                 read_scene_image, ssim, validate_clip, write_clip, write_manifest)
from dynascene_core.data.motion import is_low_motion, motion_sample_indices


@pytest.fixture(scope="module")
def clip():
    return render_synthetic_clip(make_preset("pan_right", 6), 32, 48, seed=3)


@pytest.mark.parametrize("storage", ["png", "mp4"])
def test_write_read_roundtrip(tmp_path, clip, storage):
    record = write_clip(tmp_path, "clip-a", clip.frames, clip.trajectory, 24.0, masks=clip.masks,
                        scene_images={2: clip.scene_image}, video_storage=storage, motion_score=None)
    write_manifest(tmp_path, [record])
    assert read_manifest(tmp_path) == [record]
    assert (record.num_frames, record.width, record.height, record.has_person) == (6, 48, 32, True)
    files = validate_clip(tmp_path, record)
    assert sorted(files.scene_images) == [2]
    got = read_clip_frames(record, files, [4, 1])
    assert got.indices == [4, 1]
    np.testing.assert_array_equal(got.masks, clip.masks[[4, 1]])  # PNG masks are exact
    error = np.abs(got.frames.astype(int) - clip.frames[[4, 1]].astype(int)).mean()
    assert error == 0 if storage == "png" else 0 < error < 25
    np.testing.assert_array_equal(read_scene_image(record, files, 2), clip.scene_image)


def test_scene_only_clip_needs_no_masks(tmp_path, clip):
    record = write_clip(tmp_path, "room", clip.frames, clip.trajectory, 24.0, video_storage="png")
    assert not record.has_person
    got = read_clip_frames(record, validate_clip(tmp_path, record), [0])
    assert got.masks.shape == (1, 32, 48) and got.masks.max() == 0


def _broken(tmp_path, clip, damage):
    record = write_clip(tmp_path, "bad-clip", clip.frames, clip.trajectory, 24.0, masks=clip.masks,
                        video_storage="png")
    damage(os.path.join(tmp_path, "clips", "bad-clip"))
    return record


def _drop_last_pose(folder):
    path = os.path.join(folder, "poses.txt")
    lines = open(path).read().splitlines()
    open(path, "w").write("\n".join(lines[:-1]) + "\n")


@pytest.mark.parametrize("damage, words", [
    (lambda f: os.remove(os.path.join(f, "poses.txt")), "poses.txt is missing"),
    (_drop_last_pose, "pose count mismatch"),
    (lambda f: os.remove(os.path.join(f, "masks", sorted(os.listdir(os.path.join(f, "masks")))[-1])),
     "frame count mismatch: masks"),
    (lambda f: __import__("shutil").rmtree(os.path.join(f, "masks")), "no masks"),
])
def test_validation_names_clip_and_problem(tmp_path, clip, damage, words):
    record = _broken(tmp_path, clip, damage)
    with pytest.raises(ClipError, match=words) as info:
        validate_clip(tmp_path, record)
    assert info.value.clip_id == "bad-clip" and "'bad-clip'" in str(info.value)


def test_unreadable_video_is_a_clip_error(tmp_path, clip):
    record = write_clip(tmp_path, "garbled", clip.frames, clip.trajectory, 24.0, masks=clip.masks)
    with open(os.path.join(tmp_path, "clips", "garbled", "video.mp4"), "wb") as handle:
        handle.write(b"not a video" * 100)
    with pytest.raises(ClipError, match="garbled"):
        validate_clip(tmp_path, record)
    with pytest.raises(ClipError, match="garbled.*unreadable|garbled.*not a readable"):
        read_clip_frames(record, clip_files(tmp_path, record), [0])


def test_manifest_errors_name_the_line(tmp_path):
    good = ClipRecord("a", 4, 24.0, 8, 8).to_json()
    (tmp_path / "manifest.jsonl").write_text(good + "\n" + json.dumps({"clip_id": "b/../x", "num_frames": 4,
                                                                       "fps": 24, "width": 8, "height": 8}) + "\n")
    with pytest.raises(ValueError, match=r"manifest.jsonl:2"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.jsonl").write_text(good + "\n" + good + "\n")
    with pytest.raises(ValueError, match="appears twice"):
        read_manifest(tmp_path)


def test_ssim_matches_known_values():
    flat_a, flat_b = np.full((20, 30), 100, np.uint8), np.full((20, 30), 120, np.uint8)
    c1 = (0.01 * 255) ** 2  # constant images: only the luminance term (2ab + C1) / (a² + b² + C1) remains
    assert ssim(flat_a, flat_b) == pytest.approx((2 * 100 * 120 + c1) / (100 ** 2 + 120 ** 2 + c1), rel=1e-9)
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), (0, 0), 1.5)
    assert ssim(image, image) == pytest.approx(1.0)
    scores = [ssim(image, np.clip(image + rng.normal(0, s, image.shape), 0, 255).astype(np.uint8))
              for s in (5, 20, 60)]
    assert 1 > scores[0] > scores[1] > scores[2] > 0


def test_motion_intensity_static_vs_moving():
    static = render_synthetic_clip(make_preset("static", 16), 48, 64, seed=1, actor=False).frames
    moving = render_synthetic_clip(make_preset("truck_left", 16, speed=3), 48, 64, seed=1, actor=False).frames
    # 16 frames at 24 fps -> 8 fps keeps frames 0, 3, 6, ..., 15 (6 frames, 2 pairs four apart)
    assert list(motion_sample_indices(16, 24.0)) == [0, 3, 6, 9, 12, 15]
    assert motion_intensity(static, 24.0) == pytest.approx(1.0)
    assert is_low_motion(motion_intensity(static, 24.0))
    score = motion_intensity(moving, 24.0)
    assert score < 0.8 and not is_low_motion(score)
    with pytest.raises(ValueError, match="needs more than 4 frames"):
        motion_intensity(static[:6], 24.0)
