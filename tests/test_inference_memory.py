"""Memory defaults of inference, checked on fake tensors (shapes only) with PyTorch's MemTracker: the
feed-forward in slices and the VAE decode in small chunks lower the peak by what the tensors they stop
holding at once weigh (the formulas in the tests). Full-size figures: ``benchmarks/estimate_memory.py``."""

import pytest
import torch

from benchmarks.estimate_memory import fake_models, peak_bytes, vae_decode_peak
from dynascene_core.models.denoiser import FEED_FORWARD_PIECES
from dynascene_core.sampling.pipeline import SamplerSettings

FRAMES, HEIGHT, WIDTH = 8, 128, 128  # latent 16x16; float32: 4 bytes per value


@pytest.fixture(scope="module")
def fake():
    return fake_models("tiny", torch.float32)


@pytest.mark.parametrize("kind", ["spatial", "motion"])
def test_feed_forward_slices_lower_a_blocks_peak_by_the_geglu_activation(fake, kind):
    models, mode = fake
    denoiser, h, w = models.denoiser, HEIGHT // 8, WIDTH // 8
    channels = models.config.unet["block_out_channels"][0]
    block = denoiser._spatial_blocks[0] if kind == "spatial" else denoiser._motion_blocks[0][0]
    above = {}
    with mode, torch.no_grad():
        # the first level's tokens of a CFG call (2 videos): spatial (2F, h*w, C), temporal (2*h*w, F, C)
        x = torch.randn(2 * FRAMES, h * w, channels) if kind == "spatial" else torch.randn(2 * h * w, FRAMES, channels)
        context = torch.randn(2 * FRAMES, 1, models.config.unet["cross_attention_dim"])
        kwargs = {"encoder_hidden_states": context} if kind == "spatial" else {}
        for pieces in (1, FEED_FORWARD_PIECES):
            denoiser.feed_forward_chunks(pieces)
            denoiser._set_feed_forward_chunks(2, FRAMES, h, w)  # what the denoiser's forward sets
            before, peak = peak_bytes(lambda: block(x, **kwargs), block, x, context)
            above[pieces] = peak - before
    # GEGLU: per token 2 x inner values (the projection; inner = 4 x channels), then the gate's GELU and
    # the product (inner each): 4 x inner alive at once, of which the slices keep 1/pieces
    geglu = 2 * FRAMES * h * w * 4 * (4 * channels) * 4
    assert above[1] - above[FEED_FORWARD_PIECES] >= 0.6 * geglu * (1 - 1 / FEED_FORWARD_PIECES), (above, geglu)


def test_vae_decode_chunks_of_the_default_size_hold_less(fake):
    models, mode = fake
    chunk = SamplerSettings().vae_chunk
    assert chunk < 8
    above = {c: (lambda r: r["peak"] - r["before"])(vae_decode_peak(models, mode, FRAMES, HEIGHT, WIDTH, c))
             for c in (8, chunk)}
    # decoder activations scale with the frames per call
    assert above[chunk] <= 1.2 * above[8] * chunk / 8, above


def test_vae_chunk_does_not_change_the_decoded_frames():
    from dynascene_core.conditioning import DiffusersVAECodec, decode_latents, encode_frames
    from dynascene_core.models import DynaSceneModels

    torch.manual_seed(0)
    codec = DiffusersVAECodec(DynaSceneModels.build("tiny").vae.eval())
    frames = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    chunk = SamplerSettings().vae_chunk
    latents = encode_frames(codec, frames, chunk)
    torch.testing.assert_close(latents, encode_frames(codec, frames, 8), rtol=0, atol=1e-5)
    torch.testing.assert_close(decode_latents(codec, latents, chunk), decode_latents(codec, latents, 8),
                               rtol=0, atol=1e-5)
