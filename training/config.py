"""Training configuration: YAML files in ``training/configs/`` plus ``key.sub=value`` overrides.

``configs/base.yaml`` lists every setting with its default; other files name it as ``base`` and
change a few values. The result is a plain nested dict (it is saved with every checkpoint).
Unknown keys, in files or overrides, are errors naming the key, so a typo never goes unnoticed.
"""

from __future__ import annotations

import os

import yaml

from dynascene_core.settings import ConfigError, merge_settings, read_yaml

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
DEFAULT_CONFIG = "tiny"
ALSO_TRAINABLE = {1: (), 2: ("denoiser_spatial", "reference_net")}
"""Frozen groups ``train.also_train`` may fine-tune on top of the stage's own (stage I already trains both;
its motion modules are bypassed and it has no camera)."""


def config_path(name_or_path: str) -> str:
    """A config name in ``training/configs`` (``"stage1"``) or a path to a YAML file."""
    if os.path.isfile(name_or_path):
        return name_or_path
    path = os.path.join(CONFIG_DIR, f"{name_or_path}.yaml")
    if not os.path.isfile(path):
        names = sorted(n[:-5] for n in os.listdir(CONFIG_DIR) if n.endswith(".yaml"))
        raise ConfigError(f"config {name_or_path!r} not found: neither a file nor one of {names}")
    return path


def load_config_file(path: str) -> dict:
    """A YAML config with its ``base`` chain resolved (bases are relative to the file)."""
    data = read_yaml(path)
    base_name = data.pop("base", None)
    if base_name is None:
        return data
    base = load_config_file(os.path.join(os.path.dirname(path), base_name))
    return merge_settings(base, data, path)


TIMESTEP_SAMPLINGS = ("uniform", "logit_normal", "mode")
"""Values of ``train.timestep_sampling`` (``training.step.LossSettings``: uniform, or diffusers' SD3 densities)."""


def parse_override(text: str) -> tuple[list[str], object]:
    """``"train.batch_size=2"`` → ``(["train", "batch_size"], 2)``; values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r} has no key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return key.strip().split("."), value


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` strings in order."""
    for text in overrides:
        path, value = parse_override(text)
        update: dict = value  # type: ignore[assignment]
        for part in reversed(path):
            update = {part: update}
        config = merge_settings(config, update, f"override {text!r}")
    return config


def load_config(name_or_path: str = DEFAULT_CONFIG, overrides: list[str] = ()) -> dict:
    """The full config for a name or file plus command-line overrides, checked by :func:`check_config`."""
    config = apply_overrides(load_config_file(config_path(name_or_path)), list(overrides))
    check_config(config)
    return config


def _pair(config: dict, key: str) -> None:
    section, name = key.split(".")
    value = config[section][name]
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
            and value[0] <= value[1]):
        raise ConfigError(f"{key} must be [min, max] with min <= max, got {value!r}")


def check_config(config: dict) -> None:
    """Value checks that would otherwise fail late (or silently) during training."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(config["stage"] in (1, 2), f"stage must be 1 or 2, got {config['stage']!r}")
    from dynascene_core.models.config import SPATIAL_POSITIONS

    codes = [code for code in SPATIAL_POSITIONS if code is not None]
    position = config["model"]["spatial_position"]
    need(position in (None, "none", *codes),
         f"model.spatial_position must be null, none or one of {codes}, got {position!r}")
    data, train = config["data"], config["train"]
    need(data["on_bad_clip"] in ("skip", "error"), f"data.on_bad_clip must be skip or error, got {data['on_bad_clip']!r}")
    need(data["validate"] in ("full", "quick"), f"data.validate must be full or quick, got {data['validate']!r}")
    res = data["resolution"]
    need(isinstance(res, list) and len(res) == 2 and all(isinstance(v, int) and v > 0 and v % 8 == 0 for v in res),
         f"data.resolution must be [height, width], multiples of 8, got {res!r}")
    need(isinstance(data["num_frames"], int) and data["num_frames"] >= 1,
         f"data.num_frames must be a positive integer, got {data['num_frames']!r}")
    for key in ("data.frame_stride", "tasks.outpaint_fraction", "tasks.brightness", "tasks.contrast",
                "tasks.gamma", "tasks.temperature"):
        _pair(config, key)
    need(data["frame_stride"][0] >= 1, f"data.frame_stride must be >= 1, got {data['frame_stride']!r}")
    enabled = config["tasks"]["enabled"]
    if enabled is not None:
        from .tasks import STAGE_TASKS

        wrong = [t for t in enabled if t not in STAGE_TASKS[config["stage"]]]
        need(isinstance(enabled, list) and enabled and not wrong,
             f"tasks.enabled must list stage {config['stage']} tasks {list(STAGE_TASKS[config['stage']])}, "
             f"got {enabled!r}")
    nullable = ("max_grad_norm", "snr_gamma")  # null: no clipping / no min-SNR weighting
    for key in ("learning_rate", "adam_epsilon", "weight_decay", "ema_decay", "noise_offset", "uncond_dropout",
                "timestep_logit_mean", "timestep_logit_std", "timestep_mode_scale", *nullable):
        value = train[key]
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as text
            try:
                train[key] = value = float(value)
            except ValueError:
                pass
        need((value is None and key in nullable) or (isinstance(value, (int, float)) and not isinstance(value, bool)),
             f"train.{key} must be a number{' or null' if key in nullable else ''}, got {value!r}")
    need(train["timestep_sampling"] in TIMESTEP_SAMPLINGS, f"train.timestep_sampling must be "
         f"{', '.join(TIMESTEP_SAMPLINGS[:-1])} or {TIMESTEP_SAMPLINGS[-1]}, got {train['timestep_sampling']!r}")
    need(train["timestep_logit_std"] > 0, f"train.timestep_logit_std must be > 0, got {train['timestep_logit_std']}")
    need(train["optimizer"] in ("adam", "adamw"), f"train.optimizer must be adam or adamw, got {train['optimizer']!r}")
    if train["mixed_precision"] is False:  # YAML reads a bare `no` (config file or override) as false
        train["mixed_precision"] = "no"
    need(train["mixed_precision"] in ("no", "fp16", "bf16"),
         f"train.mixed_precision must be no, fp16 or bf16, got {train['mixed_precision']!r}")
    need(0 <= train["uncond_dropout"] <= 1, f"train.uncond_dropout must be in [0, 1], got {train['uncond_dropout']}")
    for key in ("max_steps", "batch_size", "gradient_accumulation_steps"):
        need(isinstance(train[key], int) and train[key] >= 1, f"train.{key} must be a positive integer")
    seconds = train["max_seconds"]
    need(seconds is None or (isinstance(seconds, (int, float)) and seconds > 0),
         f"train.max_seconds must be a positive number of seconds or null, got {seconds!r}")
    also = train["also_train"]
    allowed = ALSO_TRAINABLE[config["stage"]]
    need(isinstance(also, list) and all(g in allowed for g in also),
         f"train.also_train must list stage {config['stage']} groups among {list(allowed)}, got {also!r}")
    for key in ("camera_control", "allow_tf32"):
        need(isinstance(train[key], bool), f"train.{key} must be true or false, got {train[key]!r}")
    need(config["checkpoint"]["keep_last"] >= 1, "checkpoint.keep_last must be >= 1")
    need(config["checkpoint"]["every"] >= 1, "checkpoint.every must be >= 1")


def dump_config(config: dict, path: str) -> None:
    """Write the resolved config as YAML (atomic)."""
    from dynascene_core.io_utils import atomic_open

    with atomic_open(path) as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
