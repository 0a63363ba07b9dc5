"""Accounting for every key of a load, and the one strict "load into a module" step all loaders share.

A load never silently drops or skips anything: each source key ends up *loaded*, *regenerated*
(sinusoidal position tables, rebuilt from the config for any length), *not used* (with a reason,
e.g. the SD text encoder), and each target parameter in the loader's scope is either loaded or a
documented *fresh init* (set here explicitly, e.g. a zeroed camera adaptor). Anything else is a
:class:`~dynascene_core.checkpoints.io.CheckpointError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import torch

from .io import CheckpointError

log = logging.getLogger(__name__)

REGENERATED_SUFFIXES = (".pos_embed.pe",)
"""Target buffers rebuilt from the config (diffusers' sinusoidal tables), never read from a file."""


@dataclass
class LoadReport:
    """What one file contributed to one module: key counts by fate, plus human-readable notes."""

    source: str
    format: str
    target: str
    loaded: list[str] = field(default_factory=list)
    regenerated: list[str] = field(default_factory=list)
    fresh_init: list[str] = field(default_factory=list)
    not_used: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "loaded": len(self.loaded),
            "regenerated": len(self.regenerated),
            "fresh_init": len(self.fresh_init),
            "not_used": sum(len(v) for v in self.not_used.values()),
        }

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{self.source} ({self.format}) -> {self.target}: {c['loaded']} loaded",
                 f"{c['regenerated']} regenerated", f"{c['fresh_init']} fresh-init", f"{c['not_used']} not used"]
        text = ", ".join(parts)
        for reason, keys in self.not_used.items():
            text += f"\n  not used ({reason}): {len(keys)} keys"
        for note in self.notes:
            text += f"\n  {note}"
        return text

    def to_dict(self) -> dict:
        return {"source": self.source, "format": self.format, "target": self.target, "counts": self.counts(),
                "not_used": {k: len(v) for k, v in self.not_used.items()},
                "fresh_init": list(self.fresh_init), "notes": list(self.notes)}


def is_regenerated(key: str) -> bool:
    return key.endswith(REGENERATED_SUFFIXES)


def check_against(
    state_dict: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size],
    *,
    path: str | None,
    looks_like: str,
    target: str,
    fresh_init: Callable[[str], bool] = lambda k: False,
) -> None:
    """Raise :class:`CheckpointError` unless ``state_dict`` covers ``expected`` exactly with equal shapes.

    Keys of ``expected`` that are regenerated buffers or documented fresh inits may be absent.
    """
    unexpected = [k for k in state_dict if k not in expected]
    missing = [k for k in expected if k not in state_dict and not is_regenerated(k) and not fresh_init(k)]
    wrong = [f"{k} {tuple(state_dict[k].shape)} != {tuple(expected[k])}"
             for k in state_dict if k in expected and tuple(state_dict[k].shape) != tuple(expected[k])]
    if unexpected or missing or wrong:
        raise CheckpointError(
            path,
            f"does not fit {target}" + (f" ({len(wrong)} shape mismatches, first: {'; '.join(wrong[:3])})"
                                         if wrong else ""),
            looks_like=looks_like,
            expected=f"exactly the parameters of {target}",
            missing=missing,
            unexpected=unexpected,
        )


def load_into(
    module: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    report: LoadReport,
    *,
    scope: Callable[[str], bool] = lambda k: True,
    fresh_init: Callable[[str], bool] = lambda k: False,
) -> LoadReport:
    """Load ``state_dict`` into the part of ``module`` selected by ``scope``, strictly.

    Every in-scope parameter/buffer must be in ``state_dict``, be a regenerated table, or satisfy
    ``fresh_init`` (those are zeroed here, so "fresh" does not depend on what the module held before).
    Modules with parameters on the ``meta`` device get the tensors assigned (no copy, the file's dtype;
    :func:`~.assemble.assemble_models` builds on ``meta`` and converts at the end).
    """
    expected = {k: v for k, v in module.state_dict().items() if scope(k)}
    check_against(state_dict, {k: v.shape for k, v in expected.items()}, path=report.source,
                  looks_like=report.format, target=report.target, fresh_init=fresh_init)
    fresh = [k for k in expected if k not in state_dict and fresh_init(k) and not is_regenerated(k)]
    zeros = {k: torch.zeros(expected[k].shape, dtype=expected[k].dtype,
                            device="cpu" if expected[k].is_meta else expected[k].device) for k in fresh}
    on_meta = any(v.is_meta for v in expected.values())
    module.load_state_dict({**state_dict, **zeros}, strict=False, assign=on_meta)
    report.loaded.extend(state_dict)
    report.fresh_init.extend(fresh)
    log.info("%s", report.summary())
    return report


def consumed_keys(source: Mapping[str, torch.Tensor], converted: Iterable[torch.Tensor]) -> set[str]:
    """Source keys whose tensors (or the tensors they were sliced from) appear in ``converted``.

    diffusers' LDM converters skip keys they do not know without saying so; this recovers which
    source keys they used, so the rest can be reported instead of silently dropped.
    """
    ids, ptrs = set(), set()
    for t in converted:
        ids.update((id(t), id(t._base)))
        if not t.is_meta and t.numel():
            ptrs.add(t.data_ptr())
    return {k for k, v in source.items()
            if id(v) in ids or (not v.is_meta and v.numel() and v.data_ptr() in ptrs)}
