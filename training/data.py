"""Training data: clip checks at start-up, the example dataset, the resumable batch sampler, the loader.

Reproducibility: example ``k`` of a run is a pure function of ``(seed, k)`` — its task, clip, frames
and augmentations come from ``numpy.random.default_rng([seed, 0, k])`` — and batch ``b`` (of all
processes together) picks its orientation bucket from ``default_rng([seed, 1, b])``. So worker
processes and the number of workers do not change the data, and a resumed run continues with the
very batches it would have seen (the data position is the number of batches consumed).

Orientation buckets: landscape clips (width >= height) are resized and centre-cropped to
``data.resolution`` (height, width), portrait clips to the transposed size; a batch never mixes them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from dynascene_core.data import (ClipError, ClipRecord, clip_files, load_trajectory, read_clip_frames,
                                 read_manifest, read_scene_image, validate_clip)
from dynascene_core.conditioning import resize_cover_crop

from .tasks import STAGE_TASKS, TASKS, TaskSettings, task_accepts

logger = logging.getLogger("dynascene.training")

MAX_BAD_CLIPS_IN_A_ROW = 20


class ClipReader:
    """A clip read at training resolution ``size = (H, W)`` (the tasks' ``ClipSource``)."""

    def __init__(self, root: str, record: ClipRecord, size: tuple[int, int]):
        self.record = record
        self.size = size
        self.files = clip_files(root, record)
        height, width = size
        self.trajectory = load_trajectory(record, self.files).for_resolution(record.width, record.height,
                                                                            width, height)
        self.scene_frames = sorted(self.files.scene_images)

    def read(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        unique = sorted(set(indices))
        clip = read_clip_frames(self.record, self.files, unique)
        where = [unique.index(i) for i in indices]
        frames = torch.from_numpy(clip.frames[where]).permute(0, 3, 1, 2).float().div_(255)
        alpha = torch.from_numpy(clip.masks[where])[:, None]
        return resize_cover_crop(frames, *self.size), resize_cover_crop(alpha, *self.size)

    def scene_image(self, frame: int) -> torch.Tensor:
        image = read_scene_image(self.record, self.files, frame)
        return resize_cover_crop(torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255), *self.size)[0]


def orientation_size(record: ClipRecord, resolution: tuple[int, int]) -> tuple[int, int]:
    """Training ``(H, W)`` of a clip: ``resolution`` for landscape, transposed for portrait."""
    height, width = resolution
    return (height, width) if record.orientation == "landscape" else (width, height)


def check_clips(root: str, records: list[ClipRecord], on_bad_clip: str, check_videos: bool) -> list[ClipRecord]:
    """Validate every clip before training (:func:`dynascene_core.data.validate_clip`).

    ``on_bad_clip="error"`` raises the first :class:`ClipError`; ``"skip"`` logs each bad clip with
    its id and problem and returns the good ones.
    """
    good = []
    for record in records:
        try:
            validate_clip(root, record, check_videos=check_videos)
        except ClipError as exc:
            if on_bad_clip == "error":
                raise
            logger.warning("skipping bad clip (data.on_bad_clip=skip): %s", exc)
            continue
        good.append(record)
    return good


@dataclass
class Bucket:
    """Clips of one orientation: training size and, per task of the stage, the usable clip indices."""

    name: str
    size: tuple[int, int]
    pools: dict[str, list[int]] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return [t for t, pool in self.pools.items() if pool]

    @property
    def weight(self) -> int:
        return len({i for pool in self.pools.values() for i in pool})


def make_buckets(records: list[ClipRecord], stage: int, settings: TaskSettings,
                 resolution: tuple[int, int]) -> dict[str, Bucket]:
    """Non-empty orientation buckets with per-task clip pools; warns about tasks with no clips."""
    buckets: dict[str, Bucket] = {}
    for index, record in enumerate(records):
        name = record.orientation
        bucket = buckets.setdefault(name, Bucket(name, orientation_size(record, resolution),
                                                 {t: [] for t in STAGE_TASKS[stage]}))
        for task in STAGE_TASKS[stage]:
            if task_accepts(task, record, settings):
                bucket.pools[task].append(index)
    buckets = {n: b for n, b in buckets.items() if b.tasks}
    if not buckets:
        raise ValueError(f"no clip can be used by any stage {stage} task (scene tasks need scene-only clips, "
                         f"the others clips with a person; video tasks need >= {settings.num_frames} frames)")
    for task in STAGE_TASKS[stage]:
        if not any(b.pools[task] for b in buckets.values()):
            logger.warning("task %s has no usable clips and will not be trained", task)
    return buckets


class TrainingExamples(Dataset):
    """Map-style dataset over keys ``(example index, bucket name)`` → one task example (see tasks.py)."""

    def __init__(self, root: str, records: list[ClipRecord], stage: int, settings: TaskSettings,
                 resolution: tuple[int, int], seed: int, on_bad_clip: str = "skip"):
        self.root = os.fspath(root)
        self.records = records
        self.settings = settings
        self.seed = seed
        self.on_bad_clip = on_bad_clip
        self.buckets = make_buckets(records, stage, settings, resolution)
        self._reported: set[str] = set()

    def example(self, index: int, bucket_name: str) -> dict:
        rng = np.random.default_rng([self.seed, 0, index])
        bucket = self.buckets[bucket_name]
        for _ in range(MAX_BAD_CLIPS_IN_A_ROW):
            tasks = bucket.tasks
            task = tasks[int(rng.integers(len(tasks)))]
            pool = bucket.pools[task]
            record = self.records[pool[int(rng.integers(len(pool)))]]
            try:
                return TASKS[task](ClipReader(self.root, record, bucket.size), rng, self.settings)
            except ClipError as exc:
                if self.on_bad_clip == "error":
                    raise
                if record.clip_id not in self._reported:
                    self._reported.add(record.clip_id)
                    logger.warning("skipping bad clip (data.on_bad_clip=skip): %s", exc)
        raise RuntimeError(f"{MAX_BAD_CLIPS_IN_A_ROW} bad clips in a row for example {index}; "
                           "check the dataset (see the warnings above)")

    def __getitem__(self, key: tuple[int, str]) -> dict:
        return self.example(*key)


class ExampleBatchSampler(Sampler):
    """Endless batches of dataset keys for one process, starting after ``start_batch`` consumed batches.

    Global batch ``g = local_batch · world_size + rank``; its examples are ``g · batch_size + k``.
    """

    def __init__(self, buckets: dict[str, Bucket], batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, start_batch: int = 0):
        self.names = sorted(buckets)
        weights = np.array([buckets[n].weight for n in self.names], np.float64)
        self.probabilities = weights / weights.sum()
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size, self.start_batch = rank, world_size, start_batch

    def batch(self, local_batch: int) -> list[tuple[int, str]]:
        global_batch = local_batch * self.world_size + self.rank
        rng = np.random.default_rng([self.seed, 1, global_batch])
        bucket = self.names[int(rng.choice(len(self.names), p=self.probabilities))]
        return [(global_batch * self.batch_size + k, bucket) for k in range(self.batch_size)]

    def __iter__(self):
        local = self.start_batch
        while True:
            yield self.batch(local)
            local += 1


def _worker_init(_: int) -> None:
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def make_loader(dataset: TrainingExamples, sampler: ExampleBatchSampler, num_workers: int,
                prefetch_factor: int = 2) -> DataLoader:
    """DataLoader over an endless sampler; worker processes decode and build the examples.

    Workers are started with ``spawn``: OpenCV's thread pool deadlocks in children forked from a
    process that already used it (the synthetic renderer, mask dilation), so fork is not safe here.
    """
    extra = {}
    if num_workers > 0:
        extra = {"prefetch_factor": prefetch_factor, "worker_init_fn": _worker_init,
                 "multiprocessing_context": "spawn", "persistent_workers": True}
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=default_collate,
                      **extra)


def load_records(root: str, split: str, on_bad_clip: str, check_videos: bool) -> list[ClipRecord]:
    """The checked clips of ``split`` (all clips if the split is empty)."""
    records = [r for r in read_manifest(root) if r.split == split]
    if not records:
        raise ValueError(f"{root}: no clips in split {split!r}")
    good = check_clips(root, records, on_bad_clip, check_videos)
    if not good:
        raise ValueError(f"{root}: every clip of split {split!r} is bad (see the warnings above)")
    if len(good) < len(records):
        logger.warning("%d of %d clips skipped as bad", len(records) - len(good), len(records))
    return good


def validation_records(root: str, count: int) -> list[ClipRecord]:
    """Clips with a person for validation samples: the ``val`` split, else the first training clips."""
    records = [r for r in read_manifest(root) if r.has_person]
    val = [r for r in records if r.split == "val"]
    return (val or records)[:count]
