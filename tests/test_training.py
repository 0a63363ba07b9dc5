"""The training loop on CPU with the tiny config: stage parameter groups, exact resume, two-process
(gloo) agreement, crash-safe checkpoints, and the command line leaving a checkpoint and a sample video."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from dynascene_core.checkpoints.dynascene_format import read_dynascene
from dynascene_core.models.params import parameter_groups
from training import checkpointing
from training.checkpointing import STATE_NAME, WEIGHTS_NAME, latest_checkpoint, list_checkpoints
from training.config import load_config
from training.prepare_synthetic import write_synthetic_dataset
from training.tasks import STAGE_TASKS


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synthetic"))
    write_synthetic_dataset(root, person_clips=3, scene_clips=2, portrait_clips=0, num_frames=8, size=(32, 48))
    return root


def tiny_config(root, output_dir, *overrides):
    return load_config("tiny", [
        f"data.root={root}", f"output_dir={output_dir}", "data.resolution=[32, 32]", "data.num_frames=4",
        "data.num_workers=0", "validation.every=0", "log.tensorboard=false", "log.progress_bar=false",
        "checkpoint.every=2", "train.max_steps=2", "tasks.removal_dilation=1", *overrides])


def _trainer(config):
    from training.train import Trainer

    return Trainer(config)


def _snapshot(models):
    return {name: p.detach().clone() for name, p in models.named_parameters()}


@pytest.mark.parametrize("stage", [1, 2])
def test_each_task_updates_exactly_its_stage_parameters(dataset, tmp_path, stage):
    for task in STAGE_TASKS[stage]:
        config = tiny_config(dataset, tmp_path / task, f"stage={stage}", f"tasks.enabled=[{task}]",
                             "train.uncond_dropout=0.0", "checkpoint.every=100",
                             # stage II: fresh motion modules have zero proj_out and a zero adaptor, so
                             # gradients reach the adaptor from step 2 and the camera encoder from step 3
                             f"train.max_steps={1 if stage == 1 else 3}")
        trainer = _trainer(config)
        trainable = set(trainer.trainable)
        groups = parameter_groups(trainer.models)
        before = _snapshot(trainer.models)
        trainer.train()
        changed = {n for n, p in trainer.models.named_parameters() if not torch.equal(p, before[n])}
        frozen_changed = changed - trainable
        assert not frozen_changed, f"{task}: frozen parameters changed: {sorted(frozen_changed)[:3]}"
        for group in {1: ("denoiser_spatial", "reference_net"),
                      2: ("motion_modules", "camera_adaptor", "camera_encoder")}[stage]:
            names = set(groups[group])
            assert len(names & changed) > 0.5 * len(names), f"{task}: group {group} barely trained"


def test_also_train_fine_tunes_the_stage_one_groups_in_stage_two_and_checkpoints_them(dataset, tmp_path):
    """Stage II from a stage-I file: by default its groups stay frozen and out of the checkpoint; with
    ``train.also_train`` they are trained and saved, and the VAE and image encoder still stay frozen."""
    from dynascene_core.checkpoints import save_dynascene
    from dynascene_core.models import DynaSceneModels
    from training.config import ConfigError

    torch.manual_seed(0)
    stage1 = tmp_path / "stage1.safetensors"
    save_dynascene(stage1, DynaSceneModels.build("tiny"), ["denoiser_spatial", "reference_net"])
    spatial_groups = ("denoiser_spatial", "reference_net")
    for also in ([], list(spatial_groups)):
        out = tmp_path / f"also{len(also)}"
        trainer = _trainer(tiny_config(dataset, out, "stage=2", f"model.init_from=[{stage1}]",
                                       f"train.also_train=[{', '.join(also)}]", "train.uncond_dropout=0.0",
                                       "train.max_steps=3", "checkpoint.every=100"))
        groups = parameter_groups(trainer.models)
        before = _snapshot(trainer.models)
        trainer.train()
        changed = {n for n, p in trainer.models.named_parameters() if not torch.equal(p, before[n])}
        saved = set(read_dynascene(os.path.join(latest_checkpoint(str(out)), WEIGHTS_NAME))[1])
        for group in spatial_groups:
            names = set(groups[group])
            if also:
                assert len(names & changed) > 0.5 * len(names), f"{group} barely trained"
            else:
                assert not names & changed, f"{group} changed though frozen"
            assert (group in saved) == bool(also)
        assert not (set(groups["vae"]) | set(groups["image_encoder"])) & changed
        assert len(set(groups["motion_modules"]) & changed) > 0.5 * len(groups["motion_modules"])
    for stage, group in ((1, "denoiser_spatial"), (2, "vae")):
        with pytest.raises(ConfigError, match=rf"train.also_train must list stage {stage} groups among"):
            tiny_config(dataset, tmp_path / "bad", f"stage={stage}", f"train.also_train=[{group}]")


def test_resume_continues_exactly(dataset, tmp_path):
    straight = _trainer(tiny_config(dataset, tmp_path / "straight", "train.max_steps=4"))
    straight.train()
    interrupted = _trainer(tiny_config(dataset, tmp_path / "resumed", "train.max_steps=4"))
    interrupted.train(stop_at=2)
    assert [s for s, _ in list_checkpoints(str(tmp_path / "resumed"))] == [2]
    resumed = _trainer(tiny_config(dataset, tmp_path / "resumed", "train.max_steps=4"))
    assert resumed.step == 2 and resumed.resumed_from.endswith("step-00000002")
    resumed.train()
    a, b = _snapshot(straight.models), _snapshot(resumed.models)
    initial = _snapshot(_trainer(tiny_config(dataset, tmp_path / "fresh", "checkpoint.resume=none")).models)
    assert any(not torch.equal(a[n], initial[n]) for n in a)
    mismatched = [n for n in a if not torch.equal(a[n], b[n])]
    assert not mismatched, f"{len(mismatched)} parameters differ after resume, e.g. {mismatched[:3]}"
    _, groups, tensors = read_dynascene(os.path.join(latest_checkpoint(str(tmp_path / "straight")), WEIGHTS_NAME))
    # the saved file holds the stage's trained weights and, as no file provided them, the random-initialised
    # parts (tiny from scratch: every group with parameters), so it alone makes the model
    present = {g for g, params in parameter_groups(straight.models).items() if params}
    assert set(groups) == present and {"motion_modules", "camera_adaptor", "camera_encoder"} <= present
    assert set(straight.trainable) < set(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(tensor, a[name])


def test_resume_takes_the_configured_learning_rate(dataset, tmp_path):
    """A cool-down: the checkpoint brings the step and Adam's moments, the config the rate (linear schedule to
    step 4: rate x (4 - step) / 4)."""
    first = _trainer(tiny_config(dataset, tmp_path / "run", "train.max_steps=4", "train.learning_rate=1e-3",
                                 "train.lr_scheduler=linear"))
    first.train(stop_at=2)
    moments = [first.optimizer.state[p]["exp_avg"].clone() for p in first.params]
    resumed = _trainer(tiny_config(dataset, tmp_path / "run", "train.max_steps=4", "train.learning_rate=1e-4",
                                   "train.lr_scheduler=linear"))
    assert resumed.step == 2
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 * 2 / 4)
    for p, m in zip(resumed.params, moments):
        assert torch.equal(resumed.optimizer.state[p]["exp_avg"], m)
    resumed.train(stop_at=3)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 * 1 / 4)


def test_crash_while_saving_keeps_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    config = tiny_config(dataset, tmp_path / "run", "train.max_steps=3", "checkpoint.keep_last=1")
    trainer = _trainer(config)
    trainer.train(stop_at=2)
    good = latest_checkpoint(str(tmp_path / "run"))
    trainer.train(stop_at=3)  # step 3 is the last one: its save is attempted again below with a crash
    trainer.step = 4

    def write_config_then_crash(config, path):  # the last file of the folder is written, the rename never comes
        real_dump_config(config, path)
        raise RuntimeError("injected failure")

    real_dump_config = checkpointing.dump_config
    monkeypatch.setattr(checkpointing, "dump_config", write_config_then_crash)
    with pytest.raises(RuntimeError, match="injected failure"):
        trainer.save()
    monkeypatch.undo()
    steps = [s for s, _ in list_checkpoints(str(tmp_path / "run"))]
    assert steps == [3]  # keep_last=1 pruned step 2 after step 3 was complete; the crashed step 4 is absent
    assert any(n.startswith(".tmp-") for n in os.listdir(tmp_path / "run" / "checkpoints"))
    assert good != latest_checkpoint(str(tmp_path / "run"))
    resumed = _trainer(config)  # the surviving checkpoint loads
    assert resumed.step == 3
    torch.load(os.path.join(latest_checkpoint(str(tmp_path / "run")), STATE_NAME), weights_only=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_line_leaves_checkpoint_and_sample_video(dataset, tmp_path):
    from dynascene_core.video import read_video
    from training.train import run

    out = tmp_path / "cli"
    checkpoint = run([f"data.root={dataset}", f"output_dir={out}", "data.resolution=[32, 32]", "data.num_frames=4",
                       "data.num_workers=0", "train.max_steps=2", "checkpoint.every=2", "validation.every=2",
                       "validation.num_frames=4", "validation.steps=2", "log.progress_bar=false",
                       "tasks.removal_dilation=1"])
    assert checkpoint.endswith("step-00000002") and os.path.isfile(os.path.join(checkpoint, WEIGHTS_NAME))
    samples = out / "samples" / "step-00000002"
    videos = sorted(p for p in os.listdir(samples) if p.endswith(".mp4"))
    assert videos == ["synthetic-person-002.mp4"]  # the val clip
    video = read_video(str(samples / videos[0]))
    assert video.frames.shape == (4, 32, 96, 3)  # foreground | generated | ground truth
    assert os.path.isfile(samples / "synthetic-person-002-trajectory.png")
    assert any(n.startswith("events.out.tfevents") for _, _, files in os.walk(out / "logs") for n in files)


def test_uncond_dropout_is_the_samplers_unconditional_branch():
    from dynascene_core.models import DynaSceneModels
    from training.networks import TrainingNetworks, prepare_stage

    models = DynaSceneModels.build("tiny")
    prepare_stage(models, 2, gradient_checkpointing=False)
    for p in models.parameters():  # make the zero-initialised adaptor and proj_out matter
        p.data.add_(torch.randn_like(p) * 0.02)
    nets = TrainingNetworks(models)
    sample, timesteps = torch.randn(2, 9, 2, 4, 4), torch.tensor([10, 500])
    embeds, scene_latent, plucker = torch.randn(2, 1, 32), torch.randn(2, 4, 4, 4), torch.randn(2, 2, 6, 32, 32)
    with torch.no_grad():
        out = nets(sample, timesteps, embeds, torch.tensor([True, False]), scene_latent, plucker)
        bank = models.reference_net(scene_latent, embeds)
        camera = models.camera_encoder(plucker)
        # the sampler's guidance branches: zero CLIP token + reference off, vs. the full condition
        uncond = models.denoiser(sample[:1], timesteps[:1], torch.zeros(1, 1, 32),
                                 reference={k: v[:1] for k, v in bank.items()}, reference_mask=(False,),
                                 camera_features=[c[:1] for c in camera])
        cond = models.denoiser(sample[1:], timesteps[1:], embeds[1:],
                               reference={k: v[1:] for k, v in bank.items()}, reference_mask=(True,),
                               camera_features=[c[1:] for c in camera])
        kept = nets(sample, timesteps, embeds, torch.tensor([False, False]), scene_latent, plucker)
    torch.testing.assert_close(out[:1], uncond, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1:], cond, atol=1e-5, rtol=1e-4)
    assert (kept[:1] - out[:1]).abs().max() > 1e-3  # dropping really changes the prediction


def test_uncond_dropout_drops_a_binomial_number_of_videos_at_the_front():
    """The loss drops each batch's first k videos, k ~ Binomial(B, p) (mean B·p, variance B·p·(1−p)), so the
    reference attention sees at most two runs of equal flags."""
    from contextlib import nullcontext

    from dynascene_core.models import DynaSceneModels
    from training.step import LossComputer, LossSettings

    models = DynaSceneModels.build("tiny")
    p, b = 0.3, 16
    computer = LossComputer(models.latent_codec(), models.image_encoder, LossSettings(1, uncond_dropout=p))
    batch = {"pixels": torch.rand(b, 1, 3, 16, 16), "alpha": torch.zeros(b, 1, 1, 16, 16),
             "scene": torch.rand(b, 3, 16, 16), "c2w": torch.eye(4).repeat(b, 1, 1, 1),
             "intrinsics": torch.tensor([0.5, 0.5, 0.5, 0.5]).repeat(b, 1, 1)}
    counts = []

    def record(sample, timesteps, image_embeds, dropped, *conditions):
        k = int(dropped.sum())
        assert dropped.dtype == torch.bool and dropped[:k].all() and not dropped[k:].any()
        counts.append(k)
        return torch.zeros(sample.shape[0], 4, *sample.shape[2:])

    for step in range(400):
        computer.loss(record, batch, torch.Generator().manual_seed(step), "cpu", nullcontext)
    counts = np.array(counts, float)
    assert abs(counts.mean() - b * p) < 4 * np.sqrt(b * p * (1 - p) / len(counts))
    assert 0.6 < counts.var() / (b * p * (1 - p)) < 1.4
    assert counts.min() < b * p < counts.max()


_KILLED_SAVE = """
import sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {tests!r})
import training.checkpointing as ckpt
from test_training import tiny_config
from training.train import Trainer

original = ckpt.dump_config
def slow_dump(config, path):
    if "step-00000004" in path:  # weights and state of step 4 are written: hang before the rename
        print("SAVING", flush=True)
        time.sleep(60)
    original(config, path)
ckpt.dump_config = slow_dump
Trainer(tiny_config({root!r}, {out!r}, "train.max_steps=4")).train()
"""


def test_process_killed_while_saving_leaves_previous_checkpoint(dataset, tmp_path):
    import subprocess
    import sys

    out = str(tmp_path / "run")
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    script = _KILLED_SAVE.format(repo=os.path.dirname(tests_dir), tests=tests_dir, root=dataset, out=out)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "SAVING"
        assert os.path.isdir(os.path.join(out, "checkpoints", ".tmp-step-00000004"))
    finally:
        proc.kill()
        proc.wait()
    assert [s for s, _ in list_checkpoints(out)] == [2]
    resumed = _trainer(tiny_config(dataset, out, "train.max_steps=4"))
    assert resumed.step == 2
    resumed.train()
    assert [s for s, _ in list_checkpoints(out)] == [2, 4]
    assert not any(n.startswith(".tmp-") for n in os.listdir(os.path.join(out, "checkpoints")))


def _ddp_resume_worker(rank, world, port, root, output_dir, result_dir, mode):
    """``mode`` "grads": the synced gradient of one step equals the mean of the processes' local gradients,
    then 4 steps straight; "first": 2 of 4 steps; "resume": a new process group resumes those to step 4."""
    import torch.distributed as dist

    from training.step import step_generator

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), ACCELERATE_USE_CPU="true")
    torch.set_num_threads(1)
    folder = "straight" if mode == "grads" else "resumed"
    trainer = _trainer(tiny_config(root, os.path.join(output_dir, folder), "train.max_steps=4"))
    acc, result = trainer.accelerator, {}
    if mode == "grads":
        batch = next(iter(trainer.loader))

        def gradients(sync: bool) -> dict:
            generator = step_generator(trainer.config["seed"], 0, 0, acc.process_index)
            with acc.no_sync(trainer.networks) if not sync else torch.enable_grad():
                acc.backward(trainer.loss_computer.loss(trainer.networks, batch, generator, trainer.device,
                                                        acc.autocast))
            grads = {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
                     for n, p in trainer.trainable.items()}  # every name on every process: same collectives
            trainer.optimizer.zero_grad(set_to_none=True)
            return grads

        local, result["synced"] = gradients(sync=False), gradients(sync=True)
        result["gathered"] = {}
        for name, grad in sorted(local.items()):
            gathered = [torch.empty_like(grad) for _ in range(world)]
            dist.all_gather(gathered, grad)
            result["gathered"][name] = torch.stack(gathered)
    result["resumed_from"] = trainer.resumed_from or ""
    trainer.train(stop_at=2 if mode == "first" else None)
    result["weights"] = {n: p.detach() for n, p in trainer.trainable.items()}
    torch.save(result, os.path.join(result_dir, f"{mode}_rank{rank}.pt"))


def test_two_processes_average_gradients_agree_and_resume_exactly(dataset, tmp_path):
    """DDP over gloo on the CPU: gradients are the mean over processes, both processes hold the same weights,
    and 2 + 2 resumed steps equal 4 straight ones."""
    for mode in ("grads", "first", "resume"):
        mp.spawn(_ddp_resume_worker, args=(2, _free_port(), dataset, str(tmp_path / "run"), str(tmp_path), mode),
                 nprocs=2)
    results = {(mode, rank): torch.load(tmp_path / f"{mode}_rank{rank}.pt", weights_only=True)
               for mode in ("grads", "resume") for rank in (0, 1)}
    for rank in (0, 1):
        grads = results["grads", rank]
        assert grads["synced"] and set(grads["synced"]) == set(grads["gathered"])
        assert any(not torch.equal(g[0], g[1]) for g in grads["gathered"].values())  # different batches per process
        for name, grad in grads["synced"].items():
            torch.testing.assert_close(grad, grads["gathered"][name].mean(0), rtol=1e-5, atol=1e-7)
        resumed = results["resume", rank]
        assert resumed["resumed_from"].endswith("step-00000002")
        for name, weight in grads["weights"].items():
            assert torch.equal(weight, resumed["weights"][name]), name
            assert torch.equal(weight, results["grads", 1 - rank]["weights"][name]), name  # the processes agree
    straight = str(tmp_path / "run" / "straight")
    saved = read_dynascene(os.path.join(latest_checkpoint(straight), WEIGHTS_NAME))[2]
    trained = results["grads", 0]["weights"]
    assert all(torch.equal(saved[n], trained[n]) for n in trained)  # the file holds every trained weight
    assert os.path.isfile(os.path.join(latest_checkpoint(straight), "rng_rank1.pt"))



def test_timestep_sampling_draws_uniform_or_the_logit_normal_density(dataset, tmp_path):
    """``uniform``: the plain draw over [0, 1000), the same numbers as before the option existed; ``logit_normal``
    with mean 1, std 0.5: t/1000 = sigmoid(N(1, 0.5)), so its median is 1000·sigmoid(1) = 731 and 90 % lie below
    1000·sigmoid(1 + 0.5·1.2816) = 838 (known quantiles); the config refuses an unknown scheme."""
    from dynascene_core.models import DynaSceneModels
    from training.config import ConfigError
    from training.step import LossComputer, LossSettings

    models = DynaSceneModels.build("tiny")

    def draw(**settings):
        computer = LossComputer(models.latent_codec(), models.image_encoder, LossSettings(2, **settings))
        return computer.sample_timesteps(20_000, torch.Generator().manual_seed(0)).numpy()

    assert np.array_equal(draw(), torch.randint(0, 1000, (20_000,), generator=torch.Generator().manual_seed(0)))
    shifted = draw(timestep_sampling="logit_normal", logit_mean=1.0, logit_std=0.5)
    assert shifted.min() >= 0 and shifted.max() <= 999
    assert abs(np.median(shifted) - 1000 / (1 + np.exp(-1.0))) < 5
    assert abs(np.quantile(shifted, 0.9) - 1000 / (1 + np.exp(-(1 + 0.5 * 1.2816)))) < 5
    with pytest.raises(ConfigError, match="timestep_sampling must be uniform, logit_normal or mode, got 'cosine'"):
        load_config("tiny", ["train.timestep_sampling=cosine"])
    trainer = _trainer(tiny_config(dataset, tmp_path / "run", "train.timestep_sampling=logit_normal",
                                   "train.timestep_logit_mean=1.0"))  # the config reaches the loss
    assert (trainer.loss_computer.settings.timestep_sampling, trainer.loss_computer.settings.logit_mean) == (
        "logit_normal", 1.0)
    trainer.train()
    assert trainer.step == 2
