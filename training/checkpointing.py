"""Training checkpoints: atomic folders, automatic resume from the latest, keeping the last N.

``OUTPUT/checkpoints/step-00001000/`` holds

- ``dynascene.safetensors``: the stage's trainable parameter groups in DynaScene's own format
  (``dynascene_core.checkpoints.dynascene_format``; the ComfyUI loaders read it directly), and
  ``dynascene_ema.safetensors`` with the EMA weights when EMA is on;
- ``training_state.pt``: optimizer, LR schedule, EMA state, step and data position (batches consumed),
  read back with ``torch.load(weights_only=True)``;
- ``rng_rank<N>.pt``: every process's torch / CUDA / numpy / Python RNG states;
- ``config.yaml``: the resolved training config.

A checkpoint is written into ``.tmp-step-…`` and renamed to ``step-…`` as the very last action, so a
crash while saving leaves only a temporary folder (removed by the next save) and the previous
checkpoint intact. Only ``step-…`` folders are ever resumed from.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from typing import Callable

import numpy as np
import torch

from .config import dump_config

WEIGHTS_NAME = "dynascene.safetensors"
EMA_WEIGHTS_NAME = "dynascene_ema.safetensors"
STATE_NAME = "training_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_root(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """Complete checkpoints ``[(step, path)]``, oldest first."""
    root = checkpoint_root(output_dir)
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        match = _STEP_DIR.match(name)
        if match and os.path.isfile(os.path.join(root, name, STATE_NAME)):
            found.append((int(match.group(1)), os.path.join(root, name)))
    return sorted(found)


def latest_checkpoint(output_dir: str) -> str | None:
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def rng_state() -> dict:
    """This process's RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(accelerator, output_dir: str, step: int, write_main: Callable[[str], None],
                    config: dict, keep_last: int) -> str:
    """Write checkpoint ``step`` atomically from every process; returns its final path.

    ``write_main(folder)`` writes the weights and training state (main process only); every process
    writes its RNG state. Everything is written into a temporary folder that is renamed last.
    """
    root = checkpoint_root(output_dir)
    final = os.path.join(root, checkpoint_name(step))
    tmp = os.path.join(root, ".tmp-" + checkpoint_name(step))
    if accelerator.is_main_process:
        os.makedirs(root, exist_ok=True)
        for name in os.listdir(root):
            if name.startswith((".tmp-", ".old-")):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        os.makedirs(tmp)
    accelerator.wait_for_everyone()
    torch.save(rng_state(), os.path.join(tmp, f"rng_rank{accelerator.process_index}.pt"))
    if accelerator.is_main_process:
        write_main(tmp)
        dump_config(config, os.path.join(tmp, "config.yaml"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if os.path.exists(final):  # re-saving a step (e.g. after a resume): move the old one aside first
            os.replace(final, os.path.join(root, ".old-" + checkpoint_name(step)))
        os.replace(tmp, final)
        for _, old in list_checkpoints(output_dir)[:-keep_last]:
            trash = os.path.join(root, ".old-" + os.path.basename(old))
            os.replace(old, trash)
            shutil.rmtree(trash, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_training_state(folder: str, process_index: int) -> tuple[dict, dict | None]:
    """``(training state, this process's RNG state or None)`` of a checkpoint folder."""
    state = torch.load(os.path.join(folder, STATE_NAME), map_location="cpu", weights_only=True)
    rng_path = os.path.join(folder, f"rng_rank{process_index}.pt")
    rng = torch.load(rng_path, map_location="cpu", weights_only=True) if os.path.isfile(rng_path) else None
    return state, rng
