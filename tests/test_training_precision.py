"""Mixed precision in training: frozen groups loaded from files are held in the training dtype, trained ones in
float32; the standalone full model still holds the source files' float32 weights bit for bit."""

import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import load_file

from conftest import distinguishable_tiny_models
from dynascene_core.checkpoints import save_dynascene
from dynascene_core.models.params import STAGE_GROUPS, parameter_groups
from test_training import dataset, tiny_config  # noqa: F401  (module fixture)

FILE_GROUPS = ["denoiser_spatial", "reference_net", "reference_net_tail", "vae", "image_encoder"]


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one process-wide precision: let each trainer here choose its own."""
    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()


@pytest.mark.parametrize("precision, frozen_dtype", [("bf16", torch.bfloat16), ("no", torch.float32)])
def test_stage_two_holds_file_weights_in_the_training_dtype_and_writes_them_unchanged(
        dataset, tmp_path, fresh_accelerate_state, precision, frozen_dtype):  # noqa: F811
    from training.train import Trainer

    source = tmp_path / "stage1.safetensors"
    save_dynascene(source, distinguishable_tiny_models(), FILE_GROUPS)  # a stage-I file with VAE and CLIP
    trainer = Trainer(tiny_config(dataset, tmp_path / "run", "stage=2", f"train.mixed_precision={precision}",
                                  f"model.init_from=[{source}]", "train.max_steps=1", "validation.num_frames=4",
                                  "validation.steps=2", "checkpoint.full_model=true"))
    groups = parameter_groups(trainer.models)
    dtypes = {g: {p.dtype for p in params.values()} for g, params in groups.items() if params}
    assert dtypes == {g: {frozen_dtype if g in FILE_GROUPS else torch.float32} for g in dtypes}
    assert set(STAGE_GROUPS[2]) <= set(dtypes) - set(FILE_GROUPS)

    batch = next(iter(trainer.loader))
    loss = trainer.loss_computer.loss(trainer.networks, batch, torch.Generator().manual_seed(0), trainer.device,
                                      trainer.accelerator.autocast)
    assert torch.isfinite(loss)
    trainer.train()
    assert trainer.validate()  # sampling runs with the networks' mixed dtypes

    written = load_file(trainer.write_full_model())
    original = load_file(source)
    assert set(original) < set(written)
    for name, tensor in original.items():
        assert tensor.dtype == written[name].dtype == torch.float32 and torch.equal(tensor, written[name]), name
    for group in STAGE_GROUPS[2]:
        for name, param in groups[group].items():
            assert torch.equal(written[name], param.detach()), name


def test_frozen_groups_in_bf16_predict_what_fp32_frozen_groups_predict_under_autocast():
    """Autocast runs matmuls and convolutions in bf16 either way, so holding the frozen weights in bf16 changes
    only the float32 ops' parameters (norm scales and shifts) by bf16 rounding: less than autocast itself
    changes against float32."""
    import copy

    from training.networks import TrainingNetworks, hold_groups_in_dtype, prepare_stage

    models = distinguishable_tiny_models()
    prepare_stage(models, 2, gradient_checkpointing=False)
    held = copy.deepcopy(models)
    frozen = [g for g, params in parameter_groups(held).items() if params and g not in STAGE_GROUPS[2]]
    assert hold_groups_in_dtype(held, frozen, torch.bfloat16) > 100
    g = torch.Generator().manual_seed(0)
    h = w = 4
    dim = models.config.unet["cross_attention_dim"]
    args = (torch.randn(2, 9, 3, h, w, generator=g), torch.tensor([100, 900]), torch.randn(2, 1, dim, generator=g),
            torch.tensor([True, False]), torch.randn(2, 4, h, w, generator=g),
            torch.randn(2, 3, 6, 8 * h, 8 * w, generator=g))
    with torch.no_grad():
        float32 = TrainingNetworks(models)(*args)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = TrainingNetworks(models)(*args).float()
            prediction = TrainingNetworks(held)(*args).float()
    held_error, autocast_error = (prediction - autocast).abs().mean(), (autocast - float32).abs().mean()
    assert 0 < held_error < autocast_error
    assert held_error < 0.005 * float32.abs().mean()
