"""Data-preparation settings: ``prepare.yaml`` (every key with its default) merged with a user's file.

Values are checked here, before any video is opened, so a bad setting fails at once with its name.
"""

from __future__ import annotations

import os

from ..settings import ConfigError, merge_settings, read_yaml

DEFAULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prepare.yaml")
DETECTORS = ("hog", "torchvision")


def load_prepare_config(path: str | None = None, overrides: dict | None = None) -> dict:
    """Defaults, then the YAML file at ``path`` (optional), then ``overrides`` (a nested dict); checked."""
    config = read_yaml(DEFAULTS_PATH)
    if path is not None:
        if not os.path.isfile(path):
            raise ConfigError(f"--config {path}: no such file")
        config = merge_settings(config, read_yaml(path), path)
    if overrides:
        config = merge_settings(config, overrides, "command line")
    check_prepare_config(config)
    return config


def check_prepare_config(config: dict) -> None:
    """Raise :class:`ConfigError` naming the first invalid setting."""
    def need(ok: bool, key: str, wanted: str) -> None:
        if not ok:
            section, name = key.split(".")
            raise ConfigError(f"{key} must be {wanted}, got {config[section][name]!r}")

    def positive(key: str, integer: bool = False, allow_none: bool = False) -> None:
        section, name = key.split(".")
        value = config[section][name]
        ok = (value is None and allow_none) or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
            and (not integer or int(value) == value))
        need(ok, key, "a positive " + ("integer" if integer else "number") + (" or null" if allow_none else ""))

    for key in ("resolution.min_short_side", "person.detect_short_side", "motion.short_side", "camera.short_side",
                "run.workers", "matting.chunk", "motion.gap"):
        positive(key, integer=True)
    positive("write.short_side", integer=True, allow_none=True)
    for key in ("shots.threshold", "shots.min_shot_seconds", "shots.max_clip_seconds", "person.sample_fps",
                "motion.sample_fps"):
        positive(key)
    for key in ("person.min_score", "person.min_box_fraction", "person.max_missing_fraction",
                "person.max_extra_fraction", "motion.max_score", "matting.min_person_fraction",
                "scene.removal_dilation", "run.ray_gpus_per_clip"):
        section, name = key.split(".")
        value = config[section][name]
        need(isinstance(value, (int, float)) and 0 <= value <= 1, key, "a number in [0, 1]")
    area = config["person"]["area_range"]
    need(isinstance(area, list) and len(area) == 2 and 0 <= area[0] < area[1] <= 1, "person.area_range",
         "[min, max] with 0 <= min < max <= 1")
    need(config["shots"]["max_clip_seconds"] >= config["shots"]["min_shot_seconds"], "shots.max_clip_seconds",
         "at least shots.min_shot_seconds")
    need(config["person"]["detector"] in DETECTORS, "person.detector", " or ".join(DETECTORS))
    for key in ("write.video_storage", "write.mask_storage"):
        section, name = key.split(".")
        need(config[section][name] in ("mp4", "png"), key, "mp4 or png")
    need(isinstance(config["run"]["contact_sheet_clips"], int) and config["run"]["contact_sheet_clips"] >= 0,
         "run.contact_sheet_clips", "an integer >= 0")
    extensions = config["sources"]["extensions"]
    need(isinstance(extensions, list) and extensions and all(isinstance(e, str) and e.startswith(".")
                                                             for e in extensions),
         "sources.extensions", "a list like [.mp4, .mov]")
