"""Data-preparation settings: ``prepare.yaml`` (every key with its default) merged with a user's file.

Values are checked here, before any video is opened, so a bad setting fails at once with its name.
"""

from __future__ import annotations

import os
import re

from ..settings import ConfigError, merge_settings, read_yaml

DEFAULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prepare.yaml")
DETECTORS = ("hog", "torchvision")


def load_prepare_config(path: str | None = None, overrides: dict | None = None) -> dict:
    """Defaults, then the YAML file at ``path`` (optional), then ``overrides`` (a nested dict); checked.

    Errors are :class:`ConfigError` naming where the bad value came from (the file) and the key."""
    config = read_yaml(DEFAULTS_PATH)
    if path is not None:
        if not os.path.isfile(path):
            raise ConfigError(f"--config {path}: no such file")
        update = read_yaml(path)
        if not update:
            raise ConfigError(f"--config {path}: the file holds no settings; list only the keys to change, "
                              "as named in dynascene_core/data/prepare.yaml")
        config = _checked(merge_settings(config, update, path), path)
    if overrides:
        config = override_settings(config, overrides, "command line")
    return config


def override_settings(config: dict, overrides: dict, source: str) -> dict:
    """``config`` with ``overrides`` (a nested dict) applied and checked; errors name ``source`` (a flag)."""
    return _checked(merge_settings(config, overrides, source), source)


def _checked(config: dict, source: str) -> dict:
    try:
        check_prepare_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_prepare_config(config: dict) -> None:
    """Raise :class:`ConfigError` naming the first invalid setting (types first, then ranges)."""
    from ..camera.estimate import METHODS, SMALLEST_SIDE
    from ..camera.rolling_shutter import DIRECTIONS, MAX_READOUT

    def value(key: str):
        section, name = key.split(".")
        return config[section][name]

    def need(ok: bool, key: str, wanted: str) -> None:
        if not ok:
            raise ConfigError(f"{key} must be {wanted}, got {value(key)!r}")

    def positive(key: str, integer: bool = False, allow_none: bool = False) -> None:
        v = value(key)
        ok = (v is None and allow_none) or (_number(v) and v > 0 and (not integer or int(v) == v))
        need(ok, key, "a positive " + ("integer" if integer else "number") + (" or null" if allow_none else ""))

    for key in ("resolution.min_short_side", "person.detect_short_side", "motion.short_side", "run.workers",
                "matting.chunk", "motion.gap"):
        positive(key, integer=True)
    side = value("camera.longer_side")
    need(_number(side) and int(side) == side and side >= SMALLEST_SIDE, "camera.longer_side",
         f"an integer of at least {SMALLEST_SIDE}")
    positive("write.short_side", integer=True, allow_none=True)
    for key in ("shots.threshold", "shots.min_shot_seconds", "shots.max_clip_seconds", "person.sample_fps",
                "motion.sample_fps"):
        positive(key)
    for key in ("person.min_score", "person.min_box_fraction", "person.max_missing_fraction",
                "person.max_extra_fraction", "motion.max_score", "matting.min_person_fraction",
                "scene.removal_dilation", "run.ray_gpus_per_clip"):
        need(_number(value(key)) and 0 <= value(key) <= 1, key, "a number in [0, 1]")
    area = value("person.area_range")
    need(isinstance(area, list) and len(area) == 2 and all(_number(a) for a in area)
         and 0 <= area[0] < area[1] <= 1, "person.area_range", "[min, max] with 0 <= min < max <= 1")
    need(value("shots.max_clip_seconds") >= value("shots.min_shot_seconds"), "shots.max_clip_seconds",
         "at least shots.min_shot_seconds")
    need(value("person.detector") in DETECTORS, "person.detector", " or ".join(DETECTORS))
    for key in ("person.weights", "matting.rvm"):
        need(value(key) is None or (isinstance(value(key), str) and value(key)), key, "a file path or null")
    need(isinstance(value("person.architecture"), str), "person.architecture", "a torchvision builder name")
    device = value("matting.device")
    need(isinstance(device, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device) is not None, "matting.device",
         "auto, cpu, mps, cuda or cuda:N")
    fov = value("camera.fov_deg")
    need(fov is None or (_number(fov) and 0 < fov < 180), "camera.fov_deg", "null or degrees in (0, 180)")
    method = value("camera.method")
    need(isinstance(method, str) and method in METHODS, "camera.method", " or ".join(sorted(METHODS)))
    readout = value("camera.readout")
    need(readout is None or (_number(readout) and 0 <= readout <= MAX_READOUT), "camera.readout",
         f"null or 0-{MAX_READOUT:g} frame intervals")
    need(value("camera.readout_direction") in (None, *DIRECTIONS), "camera.readout_direction",
         f"null or {', '.join(DIRECTIONS)}")
    need(isinstance(value("camera.keep_uncertain"), bool), "camera.keep_uncertain", "true or false")
    seed = value("scene.seed")
    need(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "scene.seed", "an integer >= 0")
    for key in ("write.video_storage", "write.mask_storage"):
        need(value(key) in ("mp4", "png"), key, "mp4 or png")
    clips = value("run.contact_sheet_clips")
    need(isinstance(clips, int) and not isinstance(clips, bool) and clips >= 0, "run.contact_sheet_clips",
         "an integer >= 0")
    extensions = value("sources.extensions")
    need(isinstance(extensions, list) and extensions and all(isinstance(e, str) and e.startswith(".")
                                                             for e in extensions),
         "sources.extensions", "a list like [.mp4, .mov]")
