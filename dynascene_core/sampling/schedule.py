"""The noise schedule, defined once for training and inference.

SD1.5-inpainting was trained with epsilon prediction on the ``scaled_linear`` betas 0.00085–0.012
over 1000 steps (DESIGN.md §4). Note the name trap: diffusers' ``scaled_linear`` is ComfyUI's
``linear``; diffusers' ``linear`` is ComfyUI's ``sqrt_linear`` (AnimateDiff's) — a different schedule.
"""

from __future__ import annotations

from diffusers import DDIMScheduler, DDPMScheduler

SD15_TRAINING_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "clip_sample": False,
}


def inference_scheduler(**overrides) -> DDIMScheduler:
    """DDIM on the training betas (``set_alpha_to_one=False`` as SD1.5's own DDIM config)."""
    return DDIMScheduler(**{**SD15_TRAINING_SCHEDULE, "set_alpha_to_one": False, **overrides})


def training_scheduler(**overrides) -> DDPMScheduler:
    """The forward (noising) process used by training; same betas as :func:`inference_scheduler`."""
    return DDPMScheduler(**{**SD15_TRAINING_SCHEDULE, **overrides})
