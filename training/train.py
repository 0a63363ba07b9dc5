"""Train DynaScene: ``python training/train.py [--config NAME|FILE] [key.sub=value ...]``.

With no arguments this trains the tiny default (``configs/tiny.yaml``) on the generated synthetic
dataset on the CPU, leaving checkpoints and validation videos in ``outputs/train-tiny``. The same
script runs under ``accelerate launch`` for multi-GPU (DDP) and multi-node training. See the README's
"Training" section.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "training"

import torch

from dynascene_core.checkpoints.dynascene_format import load_dynascene, save_dynascene
from dynascene_core.cli import CommandParser, run_command
from dynascene_core.data import MANIFEST_NAME
from dynascene_core.io_utils import atomic_output
from dynascene_core.models.params import STAGE_GROUPS, parameter_groups

from .checkpointing import (EMA_WEIGHTS_NAME, STATE_NAME, WEIGHTS_NAME, latest_checkpoint, load_training_state,
                            save_checkpoint, set_rng_state)
from .config import DEFAULT_CONFIG, dump_config, load_config
from .data import ExampleBatchSampler, TrainingExamples, load_records, make_loader
from .networks import TrainingNetworks, build_models, check_weight_files, hold_groups_in_dtype, prepare_stage
from .step import LossComputer, LossSettings, step_generator
from .tasks import TaskSettings

logger = logging.getLogger("dynascene.training")

FULL_MODEL_NAME = "dynascene_full.safetensors"

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def make_accelerator(config: dict):
    """An ``accelerate.Accelerator`` for the config (TensorBoard logging when installed and enabled)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import ProjectConfiguration

    train, output_dir = config["train"], config["output_dir"]
    log_with = None
    if config["log"]["tensorboard"]:
        try:
            import tensorboard  # noqa: F401

            log_with = "tensorboard"
        except ImportError:
            logger.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
    return Accelerator(
        mixed_precision=train["mixed_precision"],
        gradient_accumulation_steps=train["gradient_accumulation_steps"],
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=output_dir, logging_dir=os.path.join(output_dir, "logs")),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=train["find_unused_parameters"])],
    )


def ensure_dataset(config: dict, accelerator) -> None:
    """Write the synthetic dataset into ``data.root`` when it has no manifest and generation is on."""
    root = config["data"]["root"]
    if os.path.isfile(os.path.join(root, MANIFEST_NAME)):
        return
    if not config["data"]["generate_if_missing"]:
        problem = f"no {MANIFEST_NAME} in this folder" if os.path.isdir(root) else "dataset folder does not exist"
        raise ValueError(f"{root}: {problem} (data.root); point data.root=... at a dataset folder (README "
                         "'Dataset format'), or set data.generate_if_missing=true to write the synthetic one there")
    if accelerator.is_main_process:
        from .prepare_synthetic import write_synthetic_dataset

        logger.info("writing the synthetic dataset to %s", root)
        write_synthetic_dataset(root, seed=config["seed"])
    accelerator.wait_for_everyone()


class Trainer:
    """Builds everything from a config and runs the loop; ``train()`` returns the last checkpoint path."""

    def __init__(self, config: dict, accelerator=None):
        self.config = config
        self.accelerator = accelerator or make_accelerator(config)
        acc, cfg = self.accelerator, config
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched != acc.num_processes:
            raise RuntimeError(f"launched as {launched} processes (WORLD_SIZE) but accelerate runs {acc.num_processes}: "
                               "every process would train alone and overwrite the others' checkpoints. On CPU set "
                               "ACCELERATE_USE_CPU=true (see README 'Multi-GPU and multi-node')")
        self.stage = cfg["stage"]
        self.output_dir = cfg["output_dir"]
        self.device = acc.device
        data_cfg, train_cfg = cfg["data"], cfg["train"]
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(train_cfg["allow_tf32"])

        check_weight_files(cfg["model"])
        ensure_dataset(cfg, acc)
        records = load_records(data_cfg["root"], data_cfg["split"], data_cfg["on_bad_clip"],
                               check_videos=data_cfg["validate"] == "full")
        self.task_settings = TaskSettings(
            num_frames=data_cfg["num_frames"] if self.stage == 2 else 1,
            frame_stride=tuple(data_cfg["frame_stride"]),
            **{k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg["tasks"].items()})
        self.dataset = TrainingExamples(data_cfg["root"], records, self.stage, self.task_settings,
                                        tuple(data_cfg["resolution"]), cfg["seed"], data_cfg["on_bad_clip"])

        torch.manual_seed(cfg["seed"])  # identical random initialisation in every process
        self.models, loaded = build_models(cfg["model"], self.stage)
        self.camera_control = train_cfg["camera_control"]
        also_train = tuple(train_cfg["also_train"])
        self.trainable = prepare_stage(self.models, self.stage, train_cfg["gradient_checkpointing"],
                                       self.camera_control, also_train)
        present = [g for g, params in parameter_groups(self.models).items() if params]
        self.saved_groups = [g for g in present if g in STAGE_GROUPS[self.stage] + also_train or g not in loaded]
        """Trained groups (the stage's and ``train.also_train``) plus the random-initialised ones no file provides
        (a tiny/small model from scratch), so a checkpoint with its ``model.init_from`` files always makes a
        complete model. Groups without parameters here (stage I's bypassed motion modules, a weightless codec)
        are left out."""
        self.models.to(self.device)
        self.held_in_half = hold_groups_in_dtype(self.models, [g for g in present if g not in self.saved_groups],
                                                 WEIGHT_DTYPES[train_cfg["mixed_precision"]]) > 0
        """Frozen groups loaded from files are held in the mixed-precision dtype (half the memory, no re-cast
        per call); trained and random-initialised groups, the ones checkpoints save, stay float32."""
        self.params = list(self.trainable.values())

        optim_cls = torch.optim.AdamW if train_cfg["optimizer"] == "adamw" else torch.optim.Adam
        self.optimizer = optim_cls(self.params, lr=train_cfg["learning_rate"], betas=tuple(train_cfg["adam_betas"]),
                                   eps=train_cfg["adam_epsilon"], weight_decay=train_cfg["weight_decay"])
        from diffusers.optimization import get_scheduler

        self.lr_scheduler = get_scheduler(train_cfg["lr_scheduler"], self.optimizer,
                                          num_warmup_steps=train_cfg["lr_warmup_steps"],
                                          num_training_steps=train_cfg["max_steps"])
        self.ema = None
        if train_cfg["ema"]:
            from diffusers.training_utils import EMAModel

            self.ema = EMAModel(self.params, decay=train_cfg["ema_decay"])
        self.step, global_batches = 0, 0
        self.resumed_from = self._resume()
        if self.resumed_from:
            global_batches = self._resume_state["global_batches"]

        self.networks = TrainingNetworks(self.models)
        self.networks, self.optimizer = acc.prepare(self.networks, self.optimizer)
        self.loss_computer = LossComputer(self.models.latent_codec(), self.models.image_encoder, LossSettings(
            self.stage, train_cfg["uncond_dropout"], train_cfg["noise_offset"], train_cfg["snr_gamma"],
            camera=self.stage == 2 and self.camera_control, prediction_type=self.models.config.prediction_type,
            timestep_sampling=train_cfg["timestep_sampling"], logit_mean=train_cfg["timestep_logit_mean"],
            logit_std=train_cfg["timestep_logit_std"], mode_scale=train_cfg["timestep_mode_scale"]))
        if global_batches % acc.num_processes:
            logger.warning("resuming %d global batches on %d processes: the data stream shifts slightly",
                           global_batches, acc.num_processes)
        self.sampler = ExampleBatchSampler(self.dataset.buckets, train_cfg["batch_size"], cfg["seed"],
                                           acc.process_index, acc.num_processes,
                                           start_batch=global_batches // acc.num_processes)
        self.loader = make_loader(self.dataset, self.sampler, data_cfg["num_workers"], data_cfg["prefetch_factor"])
        if acc.is_main_process:
            os.makedirs(self.output_dir, exist_ok=True)
            dump_config(cfg, os.path.join(self.output_dir, "config.yaml"))
        if acc.log_with:
            acc.init_trackers("dynascene")

    # -- checkpoints ------------------------------------------------------------------------------
    def _resume(self) -> str | None:
        """Load the checkpoint named by ``checkpoint.resume`` (auto: the latest in output_dir)."""
        choice = self.config["checkpoint"]["resume"]
        if choice in (None, "none", False):
            return None
        folder = latest_checkpoint(self.output_dir) if choice == "auto" else choice
        if folder is None:
            return None
        if not os.path.isfile(os.path.join(folder, STATE_NAME)):
            raise FileNotFoundError(f"{folder}: not a training checkpoint (no {STATE_NAME})")
        state, rng = load_training_state(folder, self.accelerator.process_index)
        if state["stage"] != self.stage:
            raise ValueError(f"{folder} is a stage {state['stage']} checkpoint; this run is stage {self.stage}")
        load_dynascene(os.path.join(folder, WEIGHTS_NAME), self.models)
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self._apply_configured_learning_rate()
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        if rng is not None:
            set_rng_state(rng)
        self.step = int(state["step"])
        self._resume_state = state
        logger.info("resumed from %s at step %d", folder, self.step)
        return folder

    def _apply_configured_learning_rate(self) -> None:
        """The config's ``train.learning_rate`` and schedule win over the checkpoint's, so a run can resume with a
        lower rate (e.g. a cool-down at the end); the checkpoint keeps the step and the optimizer's moments."""
        base = float(self.config["train"]["learning_rate"])
        if self.lr_scheduler.base_lrs[0] != base:
            logger.info("learning rate %g from the config (the checkpoint's was %g)", base,
                        self.lr_scheduler.base_lrs[0])
        self.lr_scheduler.base_lrs = [base] * len(self.optimizer.param_groups)
        for group, factor in zip(self.optimizer.param_groups, self.lr_scheduler.lr_lambdas):
            group["initial_lr"] = base
            group["lr"] = base * factor(self.lr_scheduler.last_epoch)

    def _write_checkpoint(self, folder: str) -> None:
        groups = self.saved_groups
        save_dynascene(os.path.join(folder, WEIGHTS_NAME), self.models, groups)
        state = {
            "stage": self.stage, "step": self.step,
            "global_batches": self.step * self.config["train"]["gradient_accumulation_steps"]
            * self.accelerator.num_processes,
            "optimizer": self.optimizer.state_dict(), "lr_scheduler": self.lr_scheduler.state_dict(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
            self.ema.store(self.params)
            self.ema.copy_to(self.params)
            try:
                save_dynascene(os.path.join(folder, EMA_WEIGHTS_NAME), self.models, groups)
            finally:
                self.ema.restore(self.params)
        with atomic_output(os.path.join(folder, STATE_NAME)) as tmp:
            torch.save(state, tmp)

    def save(self) -> str:
        return save_checkpoint(self.accelerator, self.output_dir, self.step, self._write_checkpoint, self.config,
                               self.config["checkpoint"]["keep_last"])

    # -- loop -------------------------------------------------------------------------------------
    def write_full_model(self) -> str:
        """Write every parameter group (trained, loaded and random-initialised) to
        ``OUTPUT/dynascene_full.safetensors``: the standalone file ``generate`` and the ComfyUI loaders
        take, weights only. Returns its path (main process writes)."""
        path = os.path.join(self.output_dir, FULL_MODEL_NAME)
        if self.accelerator.is_main_process:
            present = [g for g, p in parameter_groups(self.models).items() if p]
            if self.ema is not None:
                self.ema.store(self.params)
                self.ema.copy_to(self.params)
            try:
                save_dynascene(path, self._float32_models() if self.held_in_half else self.models, present)
            finally:
                if self.ema is not None:
                    self.ema.restore(self.params)
        self.accelerator.wait_for_everyone()
        return path

    def _float32_models(self):
        """A float32 CPU copy of the models: frozen groups loaded again from their files (not the half-precision
        copies training holds), the saved groups copied from training."""
        with torch.random.fork_rng(devices=[]):
            models, _ = build_models(self.config["model"], self.stage)
        fresh, trained = parameter_groups(models), parameter_groups(self.models)
        with torch.no_grad():
            for group in self.saved_groups:
                for name, param in trained[group].items():
                    fresh[group][name].copy_(param)
        return models

    def _out_of_time(self, started: float) -> bool:
        """True once ``train.max_seconds`` of wall-clock time have passed (the same answer on every
        process: the main process's clock decides)."""
        budget = self.config["train"]["max_seconds"]
        if not budget:
            return False
        flag = torch.tensor([float(time.perf_counter() - started >= budget)], device=self.device)
        return bool(self.accelerator.reduce(flag, "max").item())

    def train(self, stop_at: int | None = None) -> str:
        """Train to ``train.max_steps`` or until ``train.max_seconds`` have passed (or stop early after
        step ``stop_at``, as an interruption would); saves a checkpoint when it stops and returns its path."""
        acc, cfg = self.accelerator, self.config
        train_cfg, max_steps = cfg["train"], cfg["train"]["max_steps"]
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, initial=self.step, desc=f"stage {self.stage}", unit="step",
                   disable=not (acc.is_main_process and cfg["log"]["progress_bar"]))
        batches = iter(self.loader)
        micro, last_saved, started, start_step = 0, None, time.perf_counter(), self.step
        window_losses: list[float] = []
        while self.step < min(max_steps, stop_at or max_steps):
            batch = next(batches)
            generator = step_generator(cfg["seed"], self.step, micro, acc.process_index)
            with acc.accumulate(self.networks):
                loss = self.loss_computer.loss(self.networks, batch, generator, self.device, acc.autocast)
                acc.backward(loss)
                grad_norm = None
                if acc.sync_gradients and train_cfg["max_grad_norm"]:
                    grad_norm = acc.clip_grad_norm_(self.params, train_cfg["max_grad_norm"])
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            micro += 1
            if not acc.sync_gradients:
                continue
            micro = 0
            self.lr_scheduler.step()
            if self.ema is not None:
                self.ema.step(self.params)
            self.step += 1
            loss_value = acc.reduce(loss.detach(), "mean").item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"loss is {loss_value} at step {self.step}; lower train.learning_rate "
                                         "or use bf16 instead of fp16")
            rate = (self.step - start_step) / max(time.perf_counter() - started, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", steps_per_s=f"{rate:.2f}")
            window_losses.append(loss_value)
            if self.step % cfg["log"]["every"] == 0 and not cfg["log"]["progress_bar"]:
                logger.info("step %d loss %.4f (mean of %d) %.2f steps/s", self.step,
                            sum(window_losses) / len(window_losses), len(window_losses), rate)
            if self.step % cfg["log"]["every"] == 0:
                window_losses.clear()
            if acc.log_with and self.step % cfg["log"]["every"] == 0:
                scalars = {"train/loss": loss_value, "train/lr": self.lr_scheduler.get_last_lr()[0],
                           "train/steps_per_second": rate}
                if grad_norm is not None:
                    scalars["train/grad_norm"] = float(grad_norm)
                acc.log(scalars, step=self.step)
            done = self.step >= max_steps or self._out_of_time(started)
            if done or self.step % cfg["checkpoint"]["every"] == 0:
                last_saved = self.save()
            every = cfg["validation"]["every"]
            if every and (done or self.step % every == 0):
                self.validate()
            if done:
                break
        bar.close()
        acc.end_training()
        return last_saved or latest_checkpoint(self.output_dir)

    # -- validation -------------------------------------------------------------------------------
    def validate(self) -> list[str]:
        """Sample videos (main process): input foreground | generated composite | ground truth, plus
        trajectory plots, in ``OUTPUT/samples/step-…/``. Uses the EMA weights when EMA is on."""
        from .validation import write_validation_samples

        written = []
        if self.accelerator.is_main_process:
            if self.ema is not None:
                self.ema.store(self.params)
                self.ema.copy_to(self.params)
            try:
                with self.accelerator.autocast():  # networks of mixed dtypes under mixed precision
                    written = write_validation_samples(self.models, self.config, self.step, self.device)
            finally:
                if self.ema is not None:
                    self.ema.restore(self.params)
        self.accelerator.wait_for_everyone()
        return written


def parse_args(argv: list[str] | None) -> tuple[str, list[str]]:
    parser = CommandParser(
        prog="python training/train.py", description="Train DynaScene (two-stage, multi-task).",
        epilog="Overrides: any config value as key.sub=value, e.g. train.max_steps=100 data.root=/data/ds")
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"config name in training/configs (tiny, stage1, stage2, proof_stage1, ...) or a YAML path "
                             f"(default {DEFAULT_CONFIG})")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    return args.config, args.overrides


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 after training, 1 with one ``error:`` line for a bad config, data set or weight file."""
    return run_command(lambda args: 0 if run(args) else 1, argv)


def run(argv: list[str] | None = None) -> str:
    """Train as the command line says; returns the last checkpoint's folder."""
    name, overrides = parse_args(argv)
    config = load_config(name, overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    trainer = Trainer(config)
    checkpoint = trainer.train()
    full = trainer.write_full_model() if config["checkpoint"]["full_model"] else None
    if trainer.accelerator.is_main_process:
        print(f"done: step {trainer.step}, checkpoint {checkpoint}, samples in "
              f"{os.path.join(config['output_dir'], 'samples')}" + (f", full model {full}" if full else ""))
    return checkpoint


if __name__ == "__main__":
    sys.exit(main())
