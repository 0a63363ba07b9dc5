"""The noise schedule, defined once for training and every sampler.

SD1.5-inpainting was trained with epsilon prediction on the ``scaled_linear`` betas 0.00085–0.012
over 1000 steps (DESIGN.md §4). Note the name trap: diffusers' ``scaled_linear`` is ComfyUI's
``linear``; diffusers' ``linear`` is ComfyUI's ``sqrt_linear`` (AnimateDiff's) — a different schedule.

A model may instead predict ``v`` (its config's ``prediction_type``, e.g. the ``small`` model trained from
scratch): every scheduler here is then built with ``prediction_type="v_prediction"`` on the same betas.

Samplers are diffusers' schedulers built on that one definition (as ``Scheduler.from_config`` of
SD1.5's DDIM config would): ``ddim`` (the paper's), ``dpmpp_2m`` (DPM-Solver++ 2M), ``unipc``
(UniPC, bh2) and ``euler`` (Euler, sigma-space latents). diffusers is imported when a scheduler is made.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SD15_TRAINING_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "clip_sample": False,
}

SAMPLERS = {
    "ddim": ("DDIMScheduler", {"set_alpha_to_one": False}),  # SD1.5's own DDIM config
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {"solver_order": 2, "solver_type": "bh2"}),
    "euler": ("EulerDiscreteScheduler", {}),
}
"""Sampler name -> (diffusers scheduler class, its settings on top of the training schedule)."""

RECOMMENDED_STEPS = {"ddim": 50, "dpmpp_2m": 20, "unipc": 20, "euler": 30}
"""Step counts commonly used with each solver on SD1.5 (DDIM-50 is the paper's setting); on the trained small
model the faster solvers at these counts match DDIM-50 on the evaluation metrics (``benchmarks/bench_samplers.py``)."""

STOCHASTIC_SAMPLERS = ("ddim",)
"""Samplers that take ``eta > 0`` (DDIM's per-step noise); the others are deterministic here."""


def inference_scheduler(steps: int | None = None, sampler: str = "ddim", **overrides):
    """A fresh diffusers scheduler for ``sampler`` on the training betas (one per generation:
    multistep solvers keep state between steps); with ``steps`` its timesteps are set too.

    DDIM keeps SD1.5's "leading" spacing with ``steps_offset=1``, which puts the first timestep one past
    the table when every training timestep is visited (``steps`` = ``num_train_timesteps``: 1000 →
    1..1000, an IndexError in a bare diffusers loop); there the offset is dropped so the steps are
    exactly 999..0. Every other count keeps SD1.5's timesteps.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
    import diffusers

    class_name, settings = SAMPLERS[sampler]
    cls = getattr(diffusers, class_name)
    accepted = inspect.signature(cls.__init__).parameters
    config = {k: v for k, v in {**SD15_TRAINING_SCHEDULE, **settings, **overrides}.items() if k in accepted}
    if steps is not None:
        total = config["num_train_timesteps"]
        if not 1 <= steps <= total:
            raise ValueError(f"steps must be between 1 and {total}, got {steps}")
        if sampler == "ddim" and (total // steps) * (steps - 1) + config["steps_offset"] >= total:
            config["steps_offset"] = 0
    scheduler = cls(**config)
    if steps is not None:
        scheduler.set_timesteps(steps)
    return scheduler


def predicted_clean_latent(noisy: torch.Tensor, prediction: torch.Tensor, alpha_bar: float,
                           prediction_type: str) -> torch.Tensor:
    """``x₀`` from a DDPM-space noisy latent ``x_t = √ᾱ·x₀ + √(1−ᾱ)·ε`` and the denoiser's prediction:
    ``(x_t − √(1−ᾱ)·ε) / √ᾱ`` for ``"epsilon"``, ``√ᾱ·x_t − √(1−ᾱ)·v`` for ``"v_prediction"``."""
    if prediction_type == "v_prediction":
        return alpha_bar ** 0.5 * noisy - (1 - alpha_bar) ** 0.5 * prediction
    return (noisy - (1 - alpha_bar) ** 0.5 * prediction) / alpha_bar ** 0.5


def training_scheduler(**overrides):
    """The forward (noising) process used by training; same betas as :func:`inference_scheduler`."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**{**SD15_TRAINING_SCHEDULE, **overrides})
