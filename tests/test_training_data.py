"""Training data: tasks build the examples the paper describes, the loader is deterministic and resumable,
batches keep one orientation, bad clips are reported by id and skipped or stop the run."""

import logging
import os

import numpy as np
import pytest
import torch

from dynascene_core.data import ClipError, read_manifest
from training.config import ConfigError, load_config
from training.data import ClipReader, ExampleBatchSampler, TrainingExamples, load_records, make_loader
from training.prepare_synthetic import write_synthetic_dataset
from training.tasks import (STAGE_TASKS, TASK_NAMES, TASKS, TaskSettings, adjust_illumination, outpainting_scene,
                            video_window)

SIZE = (32, 32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synthetic"))
    write_synthetic_dataset(root, person_clips=3, scene_clips=2, portrait_clips=1, num_frames=8, size=(32, 48))
    return root


def _reader(root, clip_id):
    record = next(r for r in read_manifest(root) if r.clip_id == clip_id)
    return ClipReader(root, record, SIZE)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_each_task_builds_its_example(dataset, task):
    settings = TaskSettings(num_frames=4, frame_stride=(1, 2), removal_dilation=1)
    person = task not in ("background_outpainting", "scene_image_variation", "scene_video_variation")
    clip = _reader(dataset, "synthetic-person-000" if person else "synthetic-scene-003")
    example = TASKS[task](clip, np.random.default_rng(1), settings)
    frames = 4 if task in STAGE_TASKS[2] else 1
    assert example["pixels"].shape == (frames, 3, *SIZE) and example["alpha"].shape == (frames, 1, *SIZE)
    assert example["scene"].shape == (3, *SIZE) and example["c2w"].shape == (frames, 4, 4)
    assert TASK_NAMES[int(example["task"])] == task and example["clip_id"] == clip.record.clip_id
    # the scene task examples have no foreground (mask 1 everywhere); the others carry the person's alpha
    assert (example["alpha"].abs().max() > 0.5) == person
    # cameras are relative to the scene image's camera
    scene_frame, indices = int(example["scene_frame"]), example["frame_indices"].tolist()
    expected = clip.trajectory.relative_to(scene_frame)[indices]
    torch.testing.assert_close(example["c2w"], expected.c2w.float())
    if scene_frame in indices:
        torch.testing.assert_close(example["c2w"][indices.index(scene_frame)], torch.eye(4))
    pixels, alpha = clip.read(indices)
    torch.testing.assert_close(example["pixels"], pixels)  # the target is the real frames, never altered
    if task == "image_background_generation":
        assert scene_frame != indices[0]
        assert example["scene"].eq(0).all(0).float().mean() > 0.05  # the person's (dilated) region is blanked


def test_outpainting_blanks_the_requested_share():
    frame = torch.rand(3, 40, 60) + 0.1
    for side in range(4):
        scene = outpainting_scene(frame, 0.3, side)
        assert scene.eq(0).all(0).float().mean().item() == pytest.approx(0.3, abs=0.02)
    left = outpainting_scene(frame, 0.25, 0)
    assert left[:, :, :15].eq(0).all() and torch.equal(left[:, :, 15:], frame[:, :, 15:])


def test_illumination_changes_scene_only_within_ranges():
    image = torch.rand(3, 16, 16)
    fixed = TaskSettings(brightness=(1, 1), contrast=(1, 1), gamma=(1, 1), temperature=(0, 0))
    torch.testing.assert_close(adjust_illumination(image, np.random.default_rng(0), fixed), image)
    warm = TaskSettings(brightness=(1, 1), contrast=(1, 1), gamma=(1, 1), temperature=(0.1, 0.1))
    out = adjust_illumination(image * 0.5, np.random.default_rng(0), warm)
    torch.testing.assert_close(out[0], image[0] * 0.55)
    torch.testing.assert_close(out[2], image[2] * 0.45)


def test_video_window_stride_and_bounds():
    rng = np.random.default_rng(0)
    for _ in range(50):
        frames = video_window(20, 6, (1, 3), rng)
        steps = set(np.diff(frames).tolist())
        assert len(steps) == 1 and steps <= {1, 2, 3} and frames[0] >= 0 and frames[-1] < 20
    assert np.diff(video_window(6, 6, (2, 4), rng)).tolist() == [1] * 5  # capped so the window fits


def _dataset(root, stage=2, on_bad_clip="skip", records=None):
    settings = TaskSettings(num_frames=4 if stage == 2 else 1, frame_stride=(1, 2), removal_dilation=1)
    records = records or load_records(root, "train", on_bad_clip, check_videos=True)
    return TrainingExamples(root, records, stage, settings, SIZE, seed=5, on_bad_clip=on_bad_clip)


def test_loader_is_deterministic_across_workers_and_resumable(dataset):
    data = _dataset(dataset)
    straight = [b for _, b in zip(range(4), make_loader(data, ExampleBatchSampler(data.buckets, 2, 5), 1))]
    resumed = [b for _, b in zip(range(2), make_loader(data, ExampleBatchSampler(data.buckets, 2, 5, start_batch=2), 0))]
    for a, b in zip(straight[2:], resumed):
        assert a["clip_id"] == b["clip_id"]
        torch.testing.assert_close(a["pixels"], b["pixels"], rtol=0, atol=0)
        torch.testing.assert_close(a["scene"], b["scene"], rtol=0, atol=0)
    # two processes see different batches
    rank0 = ExampleBatchSampler(data.buckets, 2, 5, rank=0, world_size=2).batch(0)
    rank1 = ExampleBatchSampler(data.buckets, 2, 5, rank=1, world_size=2).batch(0)
    assert {k for k, _ in rank0}.isdisjoint(k for k, _ in rank1)


def test_batches_keep_one_orientation(dataset):
    data = _dataset(dataset, stage=1)
    assert data.buckets["portrait"].size == (32, 32)[::-1] and data.buckets["landscape"].size == SIZE
    wide = _dataset(dataset, stage=1)
    wide.buckets["portrait"].size = (48, 32)
    wide.buckets["landscape"].size = (32, 48)
    sampler = ExampleBatchSampler(wide.buckets, 3, 5)
    seen = set()
    for i in range(12):
        batch = torch.utils.data.default_collate([wide[key] for key in sampler.batch(i)])
        seen.add(tuple(batch["pixels"].shape[-2:]))
    assert seen == {(32, 48), (48, 32)}


def _corrupt_poses(root, clip_id):
    path = os.path.join(root, "clips", clip_id, "poses.txt")
    lines = open(path).read().splitlines()
    open(path, "w").write("\n".join(lines[:-2]) + "\n")


def test_bad_clip_at_startup_skip_or_error(dataset, tmp_path, caplog):
    import shutil

    root = str(tmp_path / "ds")
    shutil.copytree(dataset, root)
    _corrupt_poses(root, "synthetic-person-000")
    with pytest.raises(ClipError, match="synthetic-person-000.*pose count mismatch"):
        load_records(root, "train", "error", check_videos=True)
    with caplog.at_level(logging.WARNING, logger="dynascene.training"):
        records = load_records(root, "train", "skip", check_videos=True)
    assert "synthetic-person-000" not in [r.clip_id for r in records]
    assert "synthetic-person-000" in caplog.text and "pose count mismatch" in caplog.text


def test_bad_clip_found_while_loading_skip_or_error(dataset, tmp_path, caplog):
    import shutil

    root = str(tmp_path / "ds")
    shutil.copytree(dataset, root)
    records = load_records(root, "train", "error", check_videos=True)
    for name in os.listdir(os.path.join(root, "clips")):  # garble every person clip's video after start-up
        video = os.path.join(root, "clips", name, "video.mp4")
        if "person" in name and os.path.isfile(video):
            open(video, "wb").write(b"garbage" * 50)
    data = _dataset(root, stage=2, on_bad_clip="error", records=records)
    keys = [(i, "landscape") for i in range(40)]
    with pytest.raises(ClipError, match="synthetic-person-00[0-9]'.*unreadable"):
        for key in keys:
            data[key]
    data = _dataset(root, stage=2, on_bad_clip="skip", records=records)
    with caplog.at_level(logging.WARNING, logger="dynascene.training"):
        tasks = [TASK_NAMES[int(data[key]["task"])] for key in keys[:8]]
    assert "unreadable" in caplog.text and "synthetic-person-00" in caplog.text
    assert tasks  # every example still built, from clips that are readable


def test_config_overrides_and_unknown_keys():
    config = load_config("tiny", ["train.batch_size=3", "data.resolution=[32, 64]", "stage=1"])
    assert config["train"]["batch_size"] == 3 and config["data"]["resolution"] == [32, 64] and config["stage"] == 1
    stage1 = load_config("stage1")
    assert (stage1["train"]["learning_rate"], stage1["train"]["batch_size"], stage1["data"]["resolution"],
            stage1["train"]["optimizer"]) == (1e-5, 3, [432, 768], "adam")
    stage2 = load_config("stage2")
    assert (stage2["data"]["num_frames"], stage2["train"]["batch_size"], stage2["stage"]) == (24, 1, 2)
    # YAML reads a bare `no` as false; the documented value must still work on the command line
    assert load_config("tiny", ["train.mixed_precision=no"])["train"]["mixed_precision"] == "no"
    # YAML 1.1 reads 1e-4 (no dot) as text; the number everyone types must work
    assert load_config("tiny", ["train.learning_rate=1e-4"])["train"]["learning_rate"] == 1e-4
    with pytest.raises(ConfigError, match="train.learning_rate must be a number, got 'fast'"):
        load_config("tiny", ["train.learning_rate=fast"])
    assert load_config("tiny", ["train.max_grad_norm=null", "train.snr_gamma=5e0"])["train"]["snr_gamma"] == 5.0
    with pytest.raises(ConfigError, match="mixed_precision must be no, fp16 or bf16, got 'fp8'"):
        load_config("tiny", ["train.mixed_precision=fp8"])
    with pytest.raises(ConfigError, match="train.allow_tf32 must be true or false, got 'yes please'"):
        load_config("tiny", ["train.allow_tf32=yes please"])
    with pytest.raises(ConfigError, match="train.batch_sise.*did you mean train.batch_size"):
        load_config("tiny", ["train.batch_sise=2"])
    with pytest.raises(ConfigError, match="on_bad_clip"):
        load_config("tiny", ["data.on_bad_clip=ignore"])
    with pytest.raises(ConfigError, match="multiples of 8"):
        load_config("tiny", ["data.resolution=[30, 64]"])
