"""Robust Video Matting: official key layouts, loading .pth/.safetensors, wrong files, forward pass."""

import json
import math
from pathlib import Path

import pytest
import torch

from dynascene_core.checkpoints.io import CheckpointError, write_safetensors_atomic
from dynascene_core.matting import RobustVideoMatting, load_rvm, rvm_from_state_dict

FIXTURES = Path(__file__).parent / "fixtures"
VARIANTS = ("mobilenetv3", "resnet50")


def official_layout(variant: str) -> dict[str, list[int]]:
    """``{key: shape}`` of the authors' checkpoint, listed from RVM's and torchvision's source."""
    return json.loads((FIXTURES / f"rvm_{variant}.json").read_text())


def random_state_dict(variant: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random weights in the official layout (fan-in scaled convs, sane BN statistics)."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for key, shape in official_layout(variant).items():
        if key.endswith("num_batches_tracked"):
            tensors[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            tensors[key] = 0.5 + torch.rand(shape, generator=gen)
        elif len(shape) == 1 and key.endswith(".weight"):  # BatchNorm scale
            tensors[key] = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:  # biases, BatchNorm shifts and means
            tensors[key] = 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = math.prod(shape[1:])
            tensors[key] = torch.randn(shape, generator=gen) * (1.5 / math.sqrt(fan_in))
    return tensors


@pytest.mark.parametrize("variant", VARIANTS)
def test_module_layout_is_the_official_one(variant):
    ours = {k: list(v.shape) for k, v in RobustVideoMatting(variant).state_dict().items()}
    official = official_layout(variant)
    assert sorted(set(official) - set(ours)) == []
    assert sorted(set(ours) - set(official)) == []
    assert {k: s for k, s in ours.items() if official[k] != s} == {}


def test_official_layouts_have_the_published_sizes():
    # RVM paper: 3.749M (MobileNetV3) and 26.890M (ResNet50) parameters
    def params(variant):
        return sum(math.prod(s) for k, s in official_layout(variant).items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert round(params("mobilenetv3") / 1e6, 3) == 3.749
    assert round(params("resnet50") / 1e6, 3) == 26.890


@pytest.fixture(scope="module", params=VARIANTS)
def weight_files(request, tmp_path_factory):
    variant = request.param
    tensors = random_state_dict(variant)
    folder = tmp_path_factory.mktemp(variant)
    pth, sft = folder / f"rvm_{variant}.pth", folder / f"rvm_{variant}.safetensors"
    torch.save(tensors, pth)
    write_safetensors_atomic(tensors, sft)
    return variant, tensors, pth, sft


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_official_layout_loads_with_every_key_used(weight_files, fmt):
    variant, tensors, pth, sft = weight_files
    model = load_rvm(pth if fmt == "pth" else sft)
    assert model.variant == variant and not model.training
    assert next(model.parameters()).dtype == torch.float32
    loaded = model.state_dict()
    assert set(loaded) == set(tensors)
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)


def test_variant_can_be_insisted_on(weight_files):
    variant, _, pth, _ = weight_files
    other = next(v for v in VARIANTS if v != variant)
    with pytest.raises(CheckpointError, match=rf"rvm_{variant}\.pth: is the RVM {variant} model, but {other}"):
        load_rvm(pth, variant=other)
    assert load_rvm(pth, variant=variant).variant == variant


def test_batchnorm_counters_are_optional_and_wrappers_are_unwrapped():
    tensors = {k: v for k, v in random_state_dict("mobilenetv3").items() if not k.endswith("num_batches_tracked")}
    model = rvm_from_state_dict({f"state_dict.{k}": v for k, v in tensors.items()})
    assert model.variant == "mobilenetv3"


def test_random_safetensors_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "random.safetensors"
    write_safetensors_atomic({"a.weight": torch.zeros(3), "b.bias": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError) as info:
        load_rvm(path)
    text = str(info.value)
    assert "random.safetensors: is not a Robust Video Matting checkpoint" in text
    assert "looks like: 2 tensors under a.* (1), b.* (1)" in text
    assert "rvm_mobilenetv3.pth" in text  # what was expected
    assert "missing keys, first: backbone.features.0.0.weight" in text


def test_stable_diffusion_checkpoint_is_refused(tmp_path):
    path = tmp_path / "sd15.safetensors"
    write_safetensors_atomic({"model.diffusion_model.conv_in.weight": torch.zeros(1),
                              "first_stage_model.decoder.conv_in.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match=r"(?s)sd15\.safetensors: is not a Robust.*model\.\*"):
        load_rvm(path)


def test_incomplete_and_misshaped_files_name_the_keys():
    tensors = random_state_dict("mobilenetv3")
    del tensors["decoder.decode0.conv.3.weight"]
    tensors["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"(?s)missing keys, first: decoder\.decode0\.conv\.3\.weight.*"
                                              r"unexpected keys, first: extra\.weight"):
        rvm_from_state_dict(tensors, source="partial.pth")
    tensors = random_state_dict("mobilenetv3")
    tensors["project_mat.conv.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError, match=r"project_mat\.conv\.bias \(5,\) \(expected \(4,\)\)"):
        rvm_from_state_dict(tensors, source="bad.pth")


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_shapes_ranges_and_state(variant):
    model = rvm_from_state_dict(random_state_dict(variant))
    src = torch.rand(1, 3, 3, 35, 51)  # odd sizes exercise the crop after each upsampling
    with torch.no_grad():
        fgr, pha, *rec = model(src, downsample_ratio=0.5)
        assert fgr.shape == (1, 3, 3, 35, 51) and pha.shape == (1, 3, 1, 35, 51)
        assert 0 <= float(pha.min()) and float(pha.max()) <= 1 and float(pha.std()) > 0
        assert [r.shape[1] for r in rec] == ([16, 20, 40, 64] if variant == "mobilenetv3" else [16, 32, 64, 128])
        # one frame as (B, 3, H, W) equals the same frame as (B, 1, 3, H, W)
        single = model(src[:, 0], downsample_ratio=0.5)
        assert torch.allclose(single[1], model(src[:, :1], downsample_ratio=0.5)[1][:, 0], atol=1e-6)
        # the recurrent state is memory: the same frame with and without it differs
        with_state = model(src[:, 2:], *rec, downsample_ratio=0.5)[1]
        without = model(src[:, 2:], downsample_ratio=0.5)[1]
        assert float((with_state - without).abs().max()) > 1e-4


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_the_authors_implementation(variant):
    """Outputs recorded with RVM's own model code (plus torchvision) for the same weights and input."""
    reference = json.loads((FIXTURES / "rvm_reference_outputs.json").read_text())[variant]
    model = rvm_from_state_dict(random_state_dict(variant))
    src = torch.rand(reference["input_shape"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outputs = model(src, downsample_ratio=reference["downsample_ratio"])
    for name, tensor in zip(("fgr", "pha", "r1", "r2", "r3", "r4"), outputs):
        expected = reference[name]
        assert list(tensor.shape) == expected["shape"], name
        # a signed mean's float32 rounding scales with the magnitudes summed, not with the mean: with one thread
        # on some CPUs oneDNN's kernels move r3's mean (0.037) by 1.3e-4 of itself, 8e-6 of its mean magnitude (0.56)
        assert tensor.double().mean().item() == pytest.approx(expected["mean"], rel=1e-4,
                                                              abs=1e-4 * expected["abs_mean"]), name
        assert tensor.double().abs().mean().item() == pytest.approx(expected["abs_mean"], rel=1e-4), name
        flat = tensor.flatten()
        picks = [flat[i].item() for i in expected["sample_index"]]
        assert picks == pytest.approx(expected["sample"], rel=1e-3, abs=1e-5), name
