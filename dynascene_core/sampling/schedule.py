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


def inference_scheduler(steps: int | None = None, **overrides) -> DDIMScheduler:
    """DDIM on the training betas (``set_alpha_to_one=False`` as SD1.5's own DDIM config).

    With ``steps`` the timesteps are set too. SD1.5's "leading" spacing with ``steps_offset=1`` puts
    the first timestep one past the table when every training timestep is visited (``steps`` =
    ``num_train_timesteps``: 1000 → 1..1000, an IndexError in a bare diffusers loop); there the
    offset is dropped so the steps are exactly 999..0. Every other count keeps SD1.5's timesteps.
    """
    config = {**SD15_TRAINING_SCHEDULE, "set_alpha_to_one": False, **overrides}
    if steps is not None:
        total = config["num_train_timesteps"]
        if not 1 <= steps <= total:
            raise ValueError(f"steps must be between 1 and {total}, got {steps}")
        if (total // steps) * (steps - 1) + config["steps_offset"] >= total:
            config["steps_offset"] = 0
    scheduler = DDIMScheduler(**config)
    if steps is not None:
        scheduler.set_timesteps(steps)
    return scheduler


def training_scheduler(**overrides) -> DDPMScheduler:
    """The forward (noising) process used by training; same betas as :func:`inference_scheduler`."""
    return DDPMScheduler(**{**SD15_TRAINING_SCHEDULE, **overrides})
