"""DynaScene's own weight files: safetensors with the config, format version and parameter groups.

Metadata: ``{"format": "dynascene", "format_version": "1", "config": <DynaSceneConfig JSON>,
"groups": [...]}``. Keys are the ``DynaSceneModels`` state-dict names (``denoiser.unet...``,
``reference_net.unet...``, ``camera_encoder...``); ``groups`` are names from
:func:`dynascene_core.models.parameter_groups` (stage-II files: ``motion_modules``, ``camera_adaptor``,
``camera_encoder``; full files: all groups). A file must hold exactly its groups' parameters for its
config, so a partial file can never load silently. Position tables are regenerated, never stored.
"""

from __future__ import annotations

import json
import os


from .io import CheckpointError, read_safetensors_header, read_weights, write_safetensors_atomic
from .report import LoadReport, load_into

FORMAT = "dynascene"
FORMAT_VERSION = "1"


def save_dynascene(path: str | os.PathLike, models, groups: list[str] | None = None) -> list[str]:
    """Write ``models`` (a ``DynaSceneModels``) parameter groups to ``path`` atomically; returns the keys."""
    from dynascene_core.models import parameter_groups

    all_groups = parameter_groups(models)
    groups = list(all_groups) if groups is None else list(groups)
    unknown = [g for g in groups if g not in all_groups]
    if unknown:
        raise ValueError(f"unknown parameter groups {unknown}; known: {sorted(all_groups)}")
    tensors = {name: p.detach() for g in groups for name, p in all_groups[g].items()}
    write_safetensors_atomic(tensors, path, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                             "config": models.config.to_json(), "groups": groups})
    return sorted(tensors)


def _parse_header(path: str, meta: dict[str, str]):
    from dynascene_core.models import DynaSceneConfig

    if meta.get("format") != FORMAT:
        raise CheckpointError(path, "not a DynaScene file", looks_like=f"metadata format {meta.get('format')!r}",
                              expected='safetensors metadata {"format": "dynascene", ...}')
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(path, f"DynaScene format version {meta.get('format_version')!r} is not supported",
                              expected=f"format_version {FORMAT_VERSION}")
    try:
        return DynaSceneConfig.from_json(meta["config"]), json.loads(meta["groups"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(path, f"DynaScene metadata is broken ({exc})") from exc


def read_dynascene_header(path: str | os.PathLike):
    """-> (DynaSceneConfig, groups) from the safetensors header alone (no tensor data is read)."""
    path = os.fspath(path)
    return _parse_header(path, read_safetensors_header(path)[0])


def read_dynascene(path: str | os.PathLike):
    """-> (DynaSceneConfig, groups, tensors); checks the format header."""
    wf = read_weights(path)
    config, groups = _parse_header(wf.path, wf.metadata)
    return config, groups, wf.tensors


def load_dynascene(path: str | os.PathLike, models=None):
    """Load a DynaScene file into ``models`` (built from the file's config when ``None``).

    Returns ``(models, report)``. The file's keys must be exactly its declared groups' parameters.
    """
    from dynascene_core.models import DynaSceneModels, parameter_groups

    config, groups, tensors = read_dynascene(path)
    if models is None:
        models = DynaSceneModels(config)
    elif not models.config.same_weights_as(config):
        raise CheckpointError(path, "was saved for a different model config",
                              expected="the config stored in the file (build the models from it)")
    all_groups = parameter_groups(models)
    unknown = [g for g in groups if g not in all_groups]
    if unknown:
        raise CheckpointError(path, f"declares unknown parameter groups {unknown}", expected=f"{sorted(all_groups)}")
    declared = {name for g in groups for name in all_groups[g]}
    report = LoadReport(os.fspath(path), FORMAT, "DynaScene models (" + ", ".join(groups) + ")")
    left_out = [k for k in tensors if getattr(models, k.split(".", 1)[0], None) is None]
    if left_out:  # parts the caller left out (``assemble_models(networks=...)``: VAE/CLIP from the host)
        report.not_used["network left out"] = left_out
        tensors = {k: v for k, v in tensors.items() if k not in set(left_out)}
    load_into(models, tensors, report, scope=lambda k: k in declared)
    return models, report
