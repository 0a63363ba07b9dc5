"""The proof-of-learning pieces: the small config with its patch codec, standalone checkpoints that
``generate`` loads, the dataset split, the camera ablation and the training time budget."""

import json
import os
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from dynascene_core.checkpoints import ModelFiles, assemble_models, save_dynascene
from dynascene_core.models import DynaSceneConfig, DynaSceneModels, PatchCodec, parameter_groups


def test_patch_codec_is_the_pixel_patch_layout_and_inverts_exactly():
    codec = PatchCodec(4, 2.0)
    pixels = torch.rand(3, 3, 16, 24)
    latents = codec.encode(pixels)
    assert latents.shape == (3, 48, 4, 6)
    # channel (c * p + dy) * p + dx of cell (i, j) is pixel (c, 4i + dy, 4j + dx) mapped to 2 * (2x - 1)
    for c, dy, dx, i, j in ((0, 0, 0, 0, 0), (1, 2, 3, 3, 5), (2, 3, 1, 1, 2)):
        want = 2.0 * (2 * pixels[1, c, 4 * i + dy, 4 * j + dx] - 1)
        assert latents[1, (c * 4 + dy) * 4 + dx, i, j] == pytest.approx(float(want), abs=1e-6)
    assert (codec.decode(latents) - pixels).abs().max() < 1e-6
    # the masked-image convention: a background at mid grey (0 in [-1, 1]) is an all-zero latent
    assert codec.encode(torch.full((1, 3, 8, 8), 0.5)).abs().max() == 0
    with pytest.raises(ValueError, match="multiples of 4"):
        codec.encode(torch.rand(1, 3, 10, 8))


def test_small_config_fits_its_codec_and_the_checkpoint_budget():
    config = DynaSceneConfig.preset("small")
    assert (config.latent_channels, config.latent_downscale) == (12, 2)
    assert (config.unet["in_channels"], config.unet["out_channels"]) == (25, 12)
    assert DynaSceneConfig.from_json(config.to_json()).to_dict() == config.to_dict()
    assert DynaSceneConfig.preset("sd15").latent_channels == 4 and DynaSceneConfig.preset("sd15").latent_downscale == 8
    with torch.device("meta"):
        groups = parameter_groups(DynaSceneModels(config))
    sizes = {g: sum(p.numel() for p in params.values()) for g, params in groups.items()}
    assert sizes["vae"] == 0
    # the largest training checkpoint (stage I: weights + two Adam moments, plus the frozen random parts)
    stage1 = sizes["denoiser_spatial"] + sizes["reference_net"]
    frozen = sum(sizes.values()) - stage1
    assert (3 * stage1 + frozen) * 4 < 16 * 2 ** 20
    assert config.prediction_type == "v_prediction" and DynaSceneConfig.preset("sd15").prediction_type == "epsilon"
    older = {k: v for k, v in config.to_dict().items() if k != "prediction_type"}  # files written before the key
    assert DynaSceneConfig.from_dict(older).prediction_type == "epsilon"
    with pytest.raises(ValueError, match="prediction_type must be one of epsilon, v_prediction, got 'sample'"):
        DynaSceneConfig(**{**config.to_dict(), "prediction_type": "sample"})
    with pytest.raises(ValueError, match="must be 25/12"):
        DynaSceneConfig(**{**config.to_dict(), "codec": {"type": "patch", "patch_size": 2},
                           "unet": {**config.unet, "in_channels": 9}})


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    torch.manual_seed(0)
    models = DynaSceneModels.build("small")
    for p in models.parameters():  # make the zero-initialised adaptor and motion-module outputs matter
        p.data.add_(torch.randn_like(p) * 0.02)
    path = tmp_path_factory.mktemp("small") / "dynascene_small.safetensors"
    save_dynascene(path, models, [g for g, params in parameter_groups(models).items() if params])
    return path, models


def test_a_standalone_small_file_assembles_completely(small_file):
    path, source = small_file
    assembled = assemble_models(ModelFiles(dynascene=[path]))  # default: every part generation needs
    assert assembled.camera_active and isinstance(assembled.models.vae, PatchCodec)
    want = source.state_dict()
    for name, tensor in assembled.models.state_dict().items():
        assert torch.equal(tensor, want[name]), name


def test_generate_cli_runs_the_small_file_and_the_demo_uses_the_shipped_one(small_file, tmp_path, monkeypatch, capsys):
    from dynascene_core import generate as cli
    from dynascene_core.video import read_video

    monkeypatch.setattr(cli, "DEMO_MODEL", str(tmp_path / "missing.safetensors"))
    with pytest.raises(SystemExit):
        cli.main(["--demo"])
    assert "missing.safetensors" in capsys.readouterr().err
    monkeypatch.setattr(cli, "DEMO_MODEL", str(small_file[0]))
    out = tmp_path / "demo"
    assert cli.main(["--demo", "--steps", "2", "--max-frames", "4", "--out", str(out)]) == 0
    assert read_video(out / "background.mp4").frames.shape == (4, 64, 96, 3)
    run = json.loads((out / "run.json").read_text())
    assert run["model_files"][0]["source"].endswith("dynascene_small.safetensors")


def test_proof_split_keeps_test_and_validation_scenes_and_cameras_apart(tmp_path):
    from dynascene_core.data import read_manifest
    from dynascene_core.generate import DEMO_SCENE_SEED
    from training.prepare_proof import TEST_TRAJECTORIES, VAL_TRAJECTORIES, camera_of, split_plan, write_proof_dataset

    plan = split_plan(400, 8, 8)  # the sizes of the GPU run
    seeds = {name: {s["scene_seed"] for s in plan[name]} for name in ("train", "val", "test")}
    assert len(seeds["test"]) == 8 and len(seeds["val"]) == 8
    assert not seeds["train"] & seeds["test"] and not seeds["train"] & seeds["val"] and not seeds["val"] & seeds["test"]
    assert all(DEMO_SCENE_SEED not in split_seeds for split_seeds in seeds.values())  # the demo room is unseen

    def closest(spec, others):  # largest entry difference of the c2w matrices to the nearest other camera
        c2w = camera_of(spec, 16).c2w.numpy()
        return np.abs(others - c2w).reshape(len(others), -1).max(axis=1).min()

    train_cams = np.stack([camera_of(s, 16).c2w.numpy() for s in plan["train"]])
    test_cams = np.stack([camera_of(s, 16).c2w.numpy() for s in plan["test"]])
    for spec in plan["test"] + plan["val"]:
        assert closest(spec, train_cams) > 0.05, f"{spec['clip_id']} camera is close to a training camera"
    for spec in plan["val"]:
        assert closest(spec, test_cams) > 0.05, f"{spec['clip_id']} camera is close to a test camera"
    assert {(s["camera"]["preset"], s["camera"]["speed"]) for s in plan["test"]} == set(TEST_TRAJECTORIES)
    assert {(s["camera"]["preset"], s["camera"]["speed"]) for s in plan["val"]} == set(VAL_TRAJECTORIES)

    root = tmp_path / "proof"
    write_proof_dataset(str(root), train_scenes=2, test_scenes=1, num_frames=3, size=(16, 24), val_scenes=1)
    records = {r.clip_id: r for r in read_manifest(root)}
    assert sorted(records) == ["test-000", "train-00000", "train-00001", "train-scene-00000", "val-000"]
    assert records["test-000"].split == "test" and records["val-000"].split == "val"
    assert records["train-scene-00000"].has_person is False
    for held_out in ("test", "val"):
        assert len(os.listdir(root / held_out / f"{held_out}-000" / "background")) == 3
    split = json.loads((root / "split.json").read_text())
    assert [s["clip_id"] for s in split["test"]] == ["test-000"]
    assert [s["clip_id"] for s in split["val"]] == ["val-000"]
    assert split["texture_detail"] == "coarse"


def _edge_share(image: np.ndarray) -> float:
    """Share of neighbouring pixel pairs (right and down) whose colours differ by more than 24 levels."""
    x = image.astype(np.int32)
    right = np.abs(x[:, 1:] - x[:, :-1]).max(-1) > 24
    down = np.abs(x[1:] - x[:-1]).max(-1) > 24
    return float((right.sum() + down.sum()) / (right.size + down.size))


def test_coarse_rooms_have_far_fewer_edges_at_the_proof_size():
    from dynascene_core.camera import make_preset, render_synthetic_clip

    camera = make_preset("pan_left", 2)
    for seed in (1, 2, 3):
        fine = render_synthetic_clip(camera, 64, 96, seed=seed, actor=False).scene_image
        coarse = render_synthetic_clip(camera, 64, 96, seed=seed, actor=False, detail="coarse").scene_image
        # fine rooms are pixel-sized noise at 64x96 (most neighbours differ); coarse ones are flat shapes
        assert _edge_share(fine) > 0.4 and _edge_share(coarse) < 0.5 * _edge_share(fine)
    with pytest.raises(ValueError, match="unknown texture detail 'smooth'"):
        render_synthetic_clip(camera, 16, 16, detail="smooth")


def test_camera_ablation_trains_no_camera_parts_and_feeds_no_pluecker():
    from training.networks import CAMERA_GROUPS, prepare_stage
    from training.step import LossComputer, LossSettings

    batch = {"pixels": torch.rand(1, 2, 3, 16, 16), "alpha": torch.zeros(1, 2, 1, 16, 16),
             "scene": torch.rand(1, 3, 16, 16), "c2w": torch.eye(4).repeat(1, 2, 1, 1),
             "intrinsics": torch.tensor([0.5, 0.5, 0.5, 0.5]).repeat(1, 2, 1)}
    for camera_control in (True, False):
        models = DynaSceneModels.build("tiny")
        trainable = prepare_stage(models, 2, False, camera_control=camera_control)
        camera = {n for g in CAMERA_GROUPS for n in parameter_groups(models)[g]}
        assert (camera <= set(trainable)) is camera_control and (not camera & set(trainable)) is (not camera_control)
        assert all(p.requires_grad == (n in trainable) for n, p in models.named_parameters())
        computer = LossComputer(models.latent_codec(), models.image_encoder, LossSettings(2, camera=camera_control))
        plucker = computer.conditions(batch, "cpu")["plucker"]
        assert (plucker is not None) is camera_control


def test_the_loss_target_follows_the_models_prediction_type():
    """A stand-in network that answers exactly (formulas written out from the noisy latent it is given and the
    clean latent) scores 0 for the declared type and clearly more for the other."""
    from test_sampling_correctness import exact_prediction
    from training.step import LossComputer, LossSettings

    models = DynaSceneModels.build("small")
    assert models.config.prediction_type == "v_prediction"
    batch = {"pixels": torch.rand(2, 1, 3, 16, 16), "alpha": torch.zeros(2, 1, 1, 16, 16),
             "scene": torch.rand(2, 3, 16, 16), "c2w": torch.eye(4).repeat(2, 1, 1, 1),
             "intrinsics": torch.tensor([0.5, 0.5, 0.5, 0.5]).repeat(2, 1, 1)}
    for declared in ("epsilon", "v_prediction"):
        computer = LossComputer(models.latent_codec(), models.image_encoder,
                                LossSettings(1, uncond_dropout=0.0, prediction_type=declared))
        x0 = computer.conditions(batch, "cpu")["latents"].double()
        alphas = computer.scheduler.alphas_cumprod.double()
        for answers in ("epsilon", "v_prediction"):
            def exact(sample, timesteps, *conditions):
                alpha_bar = alphas[timesteps].view(-1, 1, 1, 1, 1)
                return exact_prediction(sample[:, :12].double(), x0, alpha_bar, answers).float()

            for step in range(3):
                loss = float(computer.loss(exact, batch, torch.Generator().manual_seed(step), "cpu", nullcontext))
                assert (loss < 1e-6) if answers == declared else (loss > 1e-3), (declared, answers, loss)


def test_time_budget_stops_and_saves_a_resumable_checkpoint(tmp_path):
    from training.checkpointing import STATE_NAME, latest_checkpoint
    from training.prepare_synthetic import write_synthetic_dataset
    from training.train import FULL_MODEL_NAME, Trainer

    from test_training import tiny_config

    root = str(tmp_path / "data")
    write_synthetic_dataset(root, person_clips=2, scene_clips=1, portrait_clips=0, num_frames=6, size=(32, 48))
    config = tiny_config(root, tmp_path / "run", "train.max_steps=50", "checkpoint.every=100",
                         "train.max_seconds=0.001")
    trainer = Trainer(config)
    checkpoint = trainer.train()
    assert trainer.step == 1 and checkpoint.endswith("step-00000001")  # stopped after the first step, saved
    assert os.path.isfile(os.path.join(checkpoint, STATE_NAME))
    full = trainer.write_full_model()
    assembled = assemble_models(ModelFiles(dynascene=[full]))  # standalone: every network generation needs
    assert os.path.basename(full) == FULL_MODEL_NAME and assembled.camera_active
    resumed = Trainer(tiny_config(root, tmp_path / "run", "train.max_steps=2"))
    assert resumed.step == 1 and resumed.resumed_from == latest_checkpoint(str(tmp_path / "run"))
    resumed.train()
    assert resumed.step == 2


def test_sampler_benchmark_scores_every_run_against_ground_truth_and_the_reference_run(small_file, tmp_path):
    """benchmarks/bench_samplers.py end to end on one held-out clip: the reference run reproduces itself exactly
    (PSNR capped at 100 dB), another solver does not, and every run carries the ground-truth metrics."""
    from conftest import load_benchmark

    bench_samplers = load_benchmark("bench_samplers")
    with pytest.raises(SystemExit):
        bench_samplers.main(["--model", str(small_file[0]), "--runs", "ddim:0"])
    assert bench_samplers.default_runs()[0] == "ddim:50" and "ddim:25" in bench_samplers.default_runs()
    out = tmp_path / "out"
    assert bench_samplers.main(["--model", str(small_file[0]), "--data", str(tmp_path / "data"), "--clips", "1",
                                "--split", "val", "--runs", "ddim:2", "euler:2", "--out", str(out)]) == 0
    report = json.loads((out / "samplers.json").read_text())
    assert report["split"] == "val" and report["clips"] == ["val-000"]  # chosen without touching the test clips
    runs = report["runs"]
    assert [(r["sampler"], r["steps"]) for r in runs] == [("ddim", 2), ("euler", 2)]
    assert runs[0]["psnr_to_reference"] == 100.0 and runs[1]["psnr_to_reference"] < 60
    assert all(0 < r["metrics"]["psnr"] < 60 and r["metrics"]["rot_err"] is not None for r in runs)


def test_proof_evaluation_runs_both_rows_on_a_validation_clip_with_the_given_generate_arguments(
        small_file, tmp_path, capsys):
    """benchmarks/eval_proof.py end to end on one validation clip: both rows are generated with the extra
    generate arguments (recorded in each run.json), scored, and the table, reports and strip are written."""
    from conftest import load_benchmark

    eval_proof = load_benchmark("eval_proof")
    out = tmp_path / "out"
    model = str(small_file[0])
    code = eval_proof.main(["--cam", model, "--nocam", model, "--data", str(tmp_path / "data"), "--split", "val",
                            "--clips", "1", "--strip-clips", "1", "--steps", "2",
                            "--generate-args", "--guidance 1.5 --context-length 8", "--out", str(out)])
    assert code == 1  # the acceptance fails, as it must for one model against itself (equal rows)
    for row in ("cam", "nocam"):
        settings = json.loads((out / "runs" / row / "val-000" / "run.json").read_text())["settings"]
        assert settings["guidance_scale"] == 1.5 and settings["context_length"] == 8
        report = json.loads((out / f"report_{row}.json").read_text())
        assert list(report["per_clip"]) == ["val-000"] and report["metrics"]["rot_err"] is not None
    text = (out / "table.txt").read_text()
    assert "held-out val clips" in text and "turn ratio" in text and "references: the ground truth itself" in text
    # a still background's rotation error is the requested turn itself: the sum of each frame's angle to frame 0
    from dynascene_core.camera import CameraTrajectory

    c2w = CameraTrajectory.load(str(tmp_path / "data" / "clips" / "val-000" / "poses.txt")).c2w.numpy()
    cosines = (np.einsum("ij,fij->f", c2w[0, :3, :3], c2w[:, :3, :3]) - 1) / 2
    references = json.loads((out / "report_references.json").read_text())
    assert references["still"]["rot_err"] == pytest.approx(np.arccos(np.clip(cosines, -1, 1)).sum(), abs=1e-6)
    assert references["still"]["rot_err"] > 0.05
    assert (out / "strip.png").stat().st_size > 0
    # generation and evaluation apart (a GPU machine generates, another evaluates): the same reports
    split = tmp_path / "split"
    common = ["--data", str(tmp_path / "data"), "--split", "val", "--clips", "1", "--strip-clips", "1",
              "--out", str(split)]
    with pytest.raises(SystemExit):  # nothing generated yet: named before any work
        eval_proof.main([*common, "--only", "evaluate"])
    assert eval_proof.main(["--cam", model, "--nocam", model, *common, "--steps", "2", "--generate-args",
                            "--guidance 1.5 --context-length 8", "--only", "generate"]) == 0
    assert not (split / "report_cam.json").exists()
    assert eval_proof.main([*common, "--only", "evaluate"]) == 1  # no models needed
    for row in ("cam", "nocam"):
        whole, apart = (json.loads((d / f"report_{row}.json").read_text())["metrics"] for d in (out, split))
        assert apart == whole
    assert "seed(s) [0], 2 ddim steps --guidance 1.5 --context-length 8" in (split / "table.txt").read_text()
    # a whole run's folder evaluated again later (e.g. after an estimator change) is described by its own settings
    assert eval_proof.main([*common[:-1], str(out), "--only", "evaluate"]) == 1
    assert "seed(s) [0], 2 ddim steps --guidance 1.5" in (out / "table.txt").read_text()
    for bad in (["--seed", "1", "1"], ["--generate-args", "--seed 4"]):
        with pytest.raises(SystemExit):
            eval_proof.main(["--cam", model, "--nocam", model, *common, *bad])
    with pytest.raises(SystemExit):  # generated for val clips: named, not evaluated against test clips
        eval_proof.main([*common[:3], "test", *common[4:], "--only", "evaluate"])
    assert "was generated for val clips ['val-000'], not test clips ['test-000']" in capsys.readouterr().err
    # several seeds: every clip once per seed, all samples pooled; seed 0's sample is the one-seed run's
    seeds = tmp_path / "seeds"
    assert eval_proof.main(["--cam", model, "--nocam", model, *common[:-1], str(seeds), "--steps", "2",
                            "--generate-args", "--guidance 1.5 --context-length 8", "--seed", "0", "3"]) == 1
    report = json.loads((seeds / "report_cam.json").read_text())
    assert sorted(report["per_clip"]) == ["val-000_seed0", "val-000_seed3"]
    first = json.loads((out / "report_cam.json").read_text())["per_clip"]["val-000"]
    assert report["per_clip"]["val-000_seed0"] == first
    assert report["per_clip"]["val-000_seed3"]["psnr"] != first["psnr"]
    text = (seeds / "table.txt").read_text()
    assert "x 2 seed(s) [0, 3]" in text
    nocam = json.loads((seeds / "report_nocam.json").read_text())["per_clip"]
    cam3, nocam3 = report["per_clip"]["val-000_seed3"]["camera"]["rot_err"], nocam["val-000_seed3"]["camera"]["rot_err"]
    assert f"seed 3 {cam3:.3f} / {nocam3:.3f}" in text  # one clip per seed: that seed's number is the clip's
    from training.prepare_proof import write_proof_dataset

    old = tmp_path / "test_only"  # a dataset rendered without a validation split: named, not silently replaced
    write_proof_dataset(str(old), train_scenes=0, test_scenes=1, num_frames=3, size=(16, 24), val_scenes=0)
    with pytest.raises(SystemExit, match="has no val clips"):
        eval_proof.main(["--cam", model, "--nocam", model, "--data", str(old),
                         "--split", "val", "--out", str(tmp_path / "out2")])


def test_per_seed_rot_err_averages_each_seeds_samples_and_skips_failed_estimates():
    from conftest import load_benchmark

    eval_proof = load_benchmark("eval_proof")
    samples = eval_proof.sample_names(["a", "b"], [0, 1])
    per_clip = {"a_seed0": {"camera": {"rot_err": 1.0}}, "b_seed0": {"camera": {"rot_err": 3.0}},
                "a_seed1": {"camera": {"rot_err": 0.5}}, "b_seed1": {"camera": {"rot_err": None}}}
    assert eval_proof.per_seed_rot_err(per_clip, samples) == {0: 2.0, 1: 0.5}
    assert eval_proof.per_seed_rot_err({}, samples) == {0: None, 1: None}
    from types import SimpleNamespace

    ablation = {name: {"camera": {"rot_err": 4.0}} for name in samples}
    reports = {"cam": SimpleNamespace(per_clip=per_clip, camera={"clips_with_unreliable_frames": ["b_seed1"]}),
               "nocam": SimpleNamespace(per_clip=ablation, camera={"clips_with_unreliable_frames": []})}
    line = eval_proof.seed_spread_line(reports, samples)
    assert "seed 0 2.000 / 4.000 (0.50); seed 1 0.500 / 4.000 (0.12)" in line
    assert "(of 4): DynaScene small (camera control) 1, w/o camera control 0" in line
    # the bootstrap over clips: a (cam 1.5 = mean of its seeds 1 and 2, ablation 4) and b (cam 3, ablation 4) give
    # ratios 0.375 (a, a), 0.5625 (a, b) and 0.75 (b, b) with probabilities 1/4, 1/2, 1/4: the 2.5 / 97.5 % points
    two = {"a_seed0": {"camera": {"rot_err": 1.0}}, "a_seed1": {"camera": {"rot_err": 2.0}},
           "b_seed0": {"camera": {"rot_err": 3.0}}, "b_seed1": {"camera": {"rot_err": 3.0}}}
    assert eval_proof.ratio_interval(two, ablation, samples) == (0.375, 0.75)
    assert eval_proof.ratio_interval(ablation, ablation, samples) == (1.0, 1.0)
    assert eval_proof.ratio_interval({}, ablation, samples) is None
    assert "95 % bootstrap interval over clips" in line


def test_camera_use_separates_a_model_that_reads_its_camera_from_one_whose_adaptor_is_off(small_file, tmp_path):
    """benchmarks/camera_use.py: with the camera adaptor zeroed the three cameras give exactly the same loss (the
    camera cannot reach the denoiser); with it on (the perturbed small model) they differ. The inverted trajectory
    reverses each frame's rotation and translation. ``split`` and ``frames`` choose the examples' clips and length."""
    from conftest import load_benchmark
    from training.prepare_proof import write_proof_dataset

    camera_use = load_benchmark("camera_use")
    c2w = torch.eye(4, dtype=torch.float64).repeat(1, 2, 1, 1)
    c2w[0, 1, :3, :3] = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    c2w[0, 1, :3, 3] = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    variants = camera_use.camera_variants(c2w)
    assert torch.equal(variants["static"], torch.eye(4, dtype=torch.float64).expand(1, 2, 4, 4))
    assert torch.equal(variants["inverted"][0, 1, :3, :3] @ c2w[0, 1, :3, :3], torch.eye(3, dtype=torch.float64))
    assert variants["inverted"][0, 1, :3, 3].tolist() == [-1.0, -2.0, -3.0]

    data = tmp_path / "data"
    write_proof_dataset(str(data), train_scenes=2, test_scenes=0, val_scenes=0)
    path, models = small_file
    on = camera_use.camera_use(str(path), str(data), examples=2, timesteps=(900,))
    assert abs(on[900]["static"] - on[900]["true"]) > 1e-6 and abs(on[900]["inverted"] - on[900]["true"]) > 1e-6

    off_models = DynaSceneModels.build("small")
    off_models.load_state_dict(models.state_dict())
    for p in parameter_groups(off_models)["camera_adaptor"].values():
        p.data.zero_()
    off_path = tmp_path / "adaptor_off.safetensors"
    save_dynascene(off_path, off_models, [g for g, params in parameter_groups(off_models).items() if params])
    off = camera_use.camera_use(str(off_path), str(data), examples=2, timesteps=(900,))
    assert off[900]["static"] == off[900]["true"] == off[900]["inverted"]

    # held-out clips: examples come from the split asked for (this dataset has no training clips), with the clip
    # length asked for (4-frame clips: the config's 8 frames, or 5, leave no usable clip)
    held_out = tmp_path / "held_out"
    write_proof_dataset(str(held_out), train_scenes=0, test_scenes=0, val_scenes=1, num_frames=4)
    with pytest.raises(ValueError, match="no clips in split 'train'"):
        camera_use.camera_use(str(path), str(held_out), examples=1, timesteps=(900,))
    for frames in (None, 5):
        with pytest.raises(ValueError, match="no clip can be used"):
            camera_use.camera_use(str(path), str(held_out), examples=1, timesteps=(900,), split="val", frames=frames)
    val = camera_use.camera_use(str(path), str(held_out), examples=1, timesteps=(900,), split="val", frames=4)
    assert abs(val[900]["static"] - val[900]["true"]) > 1e-6


def test_scene_use_separates_a_model_that_reads_its_scene_image_from_one_that_cannot(small_file, tmp_path):
    """benchmarks/scene_use.py: a model whose scene image cannot reach the denoiser (ReferenceNet input layer and
    image projection zeroed: the bank and the image embedding are the same for every scene) scores exactly the same
    with its own and with another room's scene image; the perturbed small model, which reads it, does not. The
    scene image taken as the answer is exact on the pixels an outpainting example's scene image shows."""
    from conftest import load_benchmark
    from training.prepare_proof import write_proof_dataset

    scene_use = load_benchmark("scene_use")
    truth = torch.zeros(2, 3, 4, 4)
    estimate = truth + 0.1
    estimate[1] = 0.9  # outside the region: ignored
    region = torch.zeros(2, 1, 4, 4)
    region[0] = 1
    assert scene_use._psnr(estimate, truth, region) == pytest.approx(20.0)  # MSE 0.01

    data = tmp_path / "data"
    write_proof_dataset(str(data), train_scenes=2, test_scenes=0, val_scenes=0)
    path, models = small_file
    on, copy = scene_use.scene_use(str(path), str(data), examples=2, timesteps=(900,), split="train",
                                   task="background_outpainting")
    assert copy == 100.0
    assert abs(on[900]["own"]["loss"] - on[900]["other"]["loss"]) > 1e-6
    assert abs(on[900]["own"]["loss"] - on[900]["none"]["loss"]) > 1e-6

    blind = DynaSceneModels.build("small")
    blind.load_state_dict(models.state_dict())
    for name in ("reference_net.unet.conv_in.weight", "image_encoder.model.visual_projection.weight"):
        dict(blind.named_parameters())[name].data.zero_()
    blind_path = tmp_path / "blind.safetensors"
    save_dynascene(blind_path, blind, [g for g, params in parameter_groups(blind).items() if params])
    off, _ = scene_use.scene_use(str(blind_path), str(data), examples=2, timesteps=(900,), split="train",
                                 task="background_outpainting")
    assert off[900]["own"] == pytest.approx(off[900]["other"], abs=1e-6)
    assert abs(off[900]["own"]["loss"] - off[900]["none"]["loss"]) > 1e-6  # the bank itself still changes attention
    with pytest.raises(ValueError, match="at least 2 examples"):
        scene_use.scene_use(str(path), str(data), examples=1)
