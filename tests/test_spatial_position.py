"""The weightless 2D position code of spatial self-attention (``DynaSceneConfig.spatial_position="sinusoidal"``):
its formula, where it enters attention (query and key, never value; the bank's keys at the bank's grid), that it
leaves models without it untouched, and the training switch ``model.spatial_position``."""

import math

import pytest
import torch
from diffusers.models.attention_processor import Attention

from dynascene_core.checkpoints import save_dynascene
from dynascene_core.models import DynaSceneConfig, DynaSceneModels
from dynascene_core.models.attention import (ControlState, ReferenceBank, ReferenceReadProcessor,
                                             ReferenceWriteProcessor, sinusoidal_positions_2d)
from training.networks import build_models

from test_models import assert_checkpointing_keeps_grads


def test_position_code_by_the_formula():
    code = sinusoidal_positions_2d(3, 4, 8)  # quarter = 2: frequencies 1 and 10000^(-1/2) = 0.01
    assert code.shape == (12, 8)
    for row in range(3):
        for col in range(4):
            want = [math.sin(row), math.sin(0.01 * row), math.cos(row), math.cos(0.01 * row),
                    math.sin(col), math.sin(0.01 * col), math.cos(col), math.cos(0.01 * col)]
            torch.testing.assert_close(code[row * 4 + col], torch.tensor(want), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        sinusoidal_positions_2d(2, 2, 6)


def test_a_place_matches_itself_best():
    """What lets attention find the scene image's token at the same place: the code of a place has its largest
    dot product with itself (``Σ cos(ω·Δrow) + Σ cos(ω·Δcol)``, largest at Δ = 0)."""
    code = sinusoidal_positions_2d(32, 48, 32).double()
    gram = code @ code.T
    diagonal = gram.diagonal()
    torch.testing.assert_close(diagonal, torch.full_like(diagonal, 16.0))  # 16 sin² + cos² pairs
    off = gram - torch.diag(torch.full_like(diagonal, math.inf))
    assert bool((off.amax(1) < diagonal - 1e-3).all())


def _attention():
    torch.manual_seed(0)
    return Attention(query_dim=16, heads=2, dim_head=8).eval()


def _by_hand(attn, query_in, key_in, value_in):
    split = lambda t: t.view(t.shape[0], -1, 2, 8).transpose(1, 2)  # noqa: E731
    out = torch.nn.functional.scaled_dot_product_attention(split(attn.to_q(query_in)), split(attn.to_k(key_in)),
                                                           split(attn.to_v(value_in)))
    return attn.to_out[0](out.transpose(1, 2).reshape(query_in.shape[0], query_in.shape[1], 16))


def test_the_code_enters_query_and_key_not_value():
    attn = _attention()
    frames, x = 2, torch.randn(2, 10, 16)                       # one video of 2 frames, a 2 x 5 token grid
    bank = ReferenceBank({"blk": torch.randn(1, 5, 16)}, grid=((1, 5),))
    state = ControlState(bank=bank, num_frames=frames, grid=((2, 5), (1, 3)))
    own_code, bank_code = sinusoidal_positions_2d(2, 5, 16), sinusoidal_positions_2d(1, 5, 16)
    with torch.no_grad():
        out = ReferenceReadProcessor("blk", state, positions=True)(attn, x)
        keys_in = torch.cat([x + own_code, (bank["blk"] + bank_code).expand(frames, -1, -1)], 1)
        values_in = torch.cat([x, bank["blk"].expand(frames, -1, -1)], 1)
        torch.testing.assert_close(out, _by_hand(attn, x + own_code, keys_in, values_in), atol=1e-5, rtol=1e-5)
        # no bank (and the ReferenceNet's own self-attention): plain self-attention with the code
        plain = _by_hand(attn, x + own_code, x + own_code, x)
        torch.testing.assert_close(ReferenceReadProcessor("other", state, positions=True)(attn, x), plain,
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ReferenceWriteProcessor("blk", ControlState(grid=((2, 5),)), positions=True)(attn, x),
                                   plain, atol=1e-5, rtol=1e-5)
        # without the switch nothing changes
        off = ReferenceReadProcessor("blk", state)(attn, x)
        torch.testing.assert_close(off, _by_hand(attn, x, torch.cat([x, bank["blk"].expand(frames, -1, -1)], 1),
                                                 values_in), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="matches no level"):
        ReferenceReadProcessor("blk", ControlState(bank=bank, num_frames=1, grid=((3, 3),)), positions=True)(
            attn, torch.randn(1, 10, 16))
    with pytest.raises(ValueError, match="needs the reference bank's grid"):
        ReferenceReadProcessor("blk", ControlState(bank={"blk": bank["blk"]}, num_frames=frames, grid=((2, 5),)),
                               positions=True)(attn, x)


@pytest.fixture(scope="module")
def coded():
    """Tiny models with the code, and the same weights without it."""
    torch.manual_seed(0)
    config = DynaSceneConfig.preset("tiny")
    config.spatial_position = "sinusoidal"
    with_code = DynaSceneModels(config).eval()
    without = DynaSceneModels(DynaSceneConfig.preset("tiny")).eval()
    without.load_state_dict(with_code.state_dict())
    return with_code, without


def test_denoiser_with_the_code_reads_a_bank_raw_or_projected_alike(coded):
    with_code, without = coded
    g = torch.Generator().manual_seed(1)
    sample, scene, emb = torch.randn(1, 9, 2, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g), \
        torch.randn(1, 1, 32, generator=g)
    with torch.no_grad():
        bank = with_code.reference_net(scene, emb)
        assert isinstance(bank, ReferenceBank) and bank.grid == ((8, 8), (4, 4), (2, 2), (1, 1))
        out = with_code.denoiser(sample, 300, emb, reference=bank)
        projected = with_code.denoiser.project_reference(bank)
        assert projected.grid == bank.grid
        torch.testing.assert_close(with_code.denoiser(sample, 300, emb, reference=projected), out,
                                   atol=1e-5, rtol=1e-5)
        plain = without.denoiser(sample, 300, emb, reference=without.reference_net(scene, emb))
        assert (out - plain).abs().max() > 1e-3
        with pytest.raises(ValueError, match="needs the reference bank's grid"):
            with_code.denoiser(sample, 300, emb, reference=dict(bank))


def test_gradient_checkpointing_keeps_the_grid_for_recomputation(coded):
    assert assert_checkpointing_keeps_grads(coded[0]) > 1000


def test_config_key_and_files_without_it():
    config = DynaSceneConfig.preset("small")
    assert config.spatial_position is None
    config.spatial_position = "sinusoidal"
    assert DynaSceneConfig.from_json(config.to_json()).spatial_position == "sinusoidal"
    older = config.to_dict()
    del older["spatial_position"]  # files written before the key
    assert DynaSceneConfig.from_dict(older).spatial_position is None
    with pytest.raises(ValueError, match="spatial_position must be one of"):
        DynaSceneConfig.from_dict({**older, "spatial_position": "rope"})


def test_training_switch_sets_the_code_over_a_preset_or_a_file(tmp_path):
    cfg = {"preset": "small", "init_from": [], "motion_module": None, "vae": None, "clip_vision": None,
           "allow_random": False, "spatial_position": "sinusoidal"}
    models, _ = build_models(cfg, stage=2)  # still the small preset trained from scratch: no random-part error
    assert models.config.spatial_position == "sinusoidal"
    torch.manual_seed(0)
    source = DynaSceneModels.build("small")
    path = tmp_path / "stage1.safetensors"
    save_dynascene(path, source, ["denoiser_spatial", "reference_net", "image_encoder"])
    models, loaded = build_models(cfg | {"init_from": [str(path)]}, stage=2)
    assert models.config.spatial_position == "sinusoidal" and "denoiser_spatial" in loaded
    assert torch.equal(models.denoiser.unet.conv_in.weight, source.denoiser.unet.conv_in.weight)
    kept, _ = build_models(cfg | {"init_from": [str(path)], "spatial_position": None}, stage=2)
    assert kept.config.spatial_position is None  # null keeps the file's own


def test_generation_runs_with_the_code_through_windows_and_both_guidances(coded):
    """The whole sampler with the code on: the ReferenceBank (and its grid) survives projection once per call and
    is read in every context window, by the conditional, the unconditional and the camera-guidance branches; the
    result differs from the same weights without the code."""
    from dynascene_core.camera import camera_condition, make_preset
    from dynascene_core.conditioning import DiffusersVAECodec
    from dynascene_core.sampling.pipeline import SamplerSettings, generate

    g = torch.Generator().manual_seed(0)
    frames, scene = torch.rand(6, 3, 32, 32, generator=g), torch.rand(3, 32, 32, generator=g)
    alpha = torch.zeros(6, 1, 32, 32)
    alpha[:, :, 8:24, 8:16] = 1
    trajectory = make_preset("pan_right", 6)
    settings = SamplerSettings(steps=2, context_length=4, context_overlap=2, camera_guidance=2.0)
    results = [generate(m, DiffusersVAECodec(m.vae), m.image_encoder, frames, alpha, scene,
                        camera_condition(trajectory, 32, 32), 6, settings) for m in coded]
    assert results[0].latents.shape == (1, 4, 6, 4, 4) and bool(torch.isfinite(results[0].latents).all())
    assert (results[0].latents - results[1].latents).abs().max() > 1e-4
