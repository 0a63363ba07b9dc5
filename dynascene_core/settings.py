"""YAML settings files with checked keys, shared by the training configs and data preparation.

A settings tree is a nested dict whose defaults list every key; updates (a user's file, command-line
overrides) may only change keys that exist, so a typo is an error naming the key (with close matches).
"""

from __future__ import annotations

import copy
import difflib


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key or file."""


def read_yaml(path: str) -> dict:
    """A YAML file holding a mapping (an empty file is ``{}``)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a YAML config file was expected)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({yaml_error_line(exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping, got {type(data).__name__}")
    return data


def yaml_error_line(exc) -> str:
    """PyYAML's multi-line error as one line: ``line L, column C: what was wrong``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem


def flat_keys(tree: dict, prefix: str = ""):
    """Dotted names of every leaf setting (``"train.batch_size"``)."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flat_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def merge_settings(base: dict, update: dict, source: str, prefix: str = "") -> dict:
    """``base`` with ``update`` applied; every key of ``update`` must already exist in ``base``."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in out:
            close = difflib.get_close_matches(name, list(flat_keys(base, prefix)), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"{source}: unknown setting {name!r}{hint}")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {name!r} is a section, got {value!r}")
            out[key] = merge_settings(out[key], value, source, name + ".")
        else:
            out[key] = value
    return out
