"""GPU memory peaks of inference at full size, estimated on the CPU without a GPU.

The networks and one guided U-Net call (or one VAE decode) run on fake tensors — shapes and dtypes only,
no arithmetic — under PyTorch's ``MemTracker``, which adds up every tensor alive at each moment. This
counts what ``torch.cuda.max_memory_allocated`` counts (live tensors), not the allocator's rounding or
cached blocks, and attention at its memory-efficient kernels' size. Used to choose the feed-forward slices
and the VAE chunk, and by the tests at a small size.

    python benchmarks/estimate_memory.py                    # sd15, 24 frames 768x432, fp16 (~3 min on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GIB = 2 ** 30
CPU = torch.device("cpu")


def fake_models(config: str, dtype=torch.float16):
    """``DynaSceneModels`` of ``config`` on fake tensors (built in ``dtype``) and the fake mode."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from dynascene_core.models import DynaSceneConfig, DynaSceneModels

    mode = FakeTensorMode()
    default = torch.get_default_dtype()
    with mode:
        torch.set_default_dtype(dtype)  # built in dtype: fake parameters cannot be converted in place
        try:
            models = DynaSceneModels(DynaSceneConfig.preset(config)).eval()
        finally:
            torch.set_default_dtype(default)
    return models, mode


def peak_bytes(run, *tracked) -> tuple[float, float]:
    """(bytes alive before ``run()``, peak bytes during it) on the CPU (where the fake tensors are) over the
    tensors of ``tracked`` and all new ones."""
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    tracker.track_external(*tracked)
    with tracker:
        before = tracker.get_tracker_snapshot("current")[CPU]["Total"]
        run()
    return before, tracker.get_tracker_snapshot("peak")[CPU]["Total"]


class _AsModule(torch.nn.Module):
    """A call as one module, so that MemTracker sees repeated calls of a network (one per chunk) inside it."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self):
        return self.fn()


def unet_call_peak(models, mode, frames: int, height: int, width: int, pieces: int) -> dict:
    """One guided U-Net call (:func:`benchmarks.inference_parts.guided_unet_call`) with the feed-forward in
    ``pieces`` slices: bytes of everything alive before the call and at its peak."""
    from benchmarks.inference_parts import guided_unet_call

    with mode, torch.no_grad():
        models.denoiser.feed_forward_chunks(pieces)
        call, held = guided_unet_call(models, frames, height, width)
        before, peak = peak_bytes(call, models, *held)
    return {"before": before, "peak": peak}


def vae_decode_peak(models, mode, frames: int, height: int, width: int, chunk: int) -> dict:
    """``decode_latents`` of ``frames`` latents in chunks of ``chunk`` frames, each chunk's pixels moved off
    the device at once as ``generate`` does (here to ``meta``, which the CPU figures leave out)."""
    from dynascene_core.conditioning import decode_latents

    dtype = next(models.vae.parameters()).dtype
    config = models.config
    with mode, torch.no_grad():
        latents = torch.randn(frames, config.latent_channels, height // config.latent_downscale,
                              width // config.latent_downscale, dtype=dtype)
        decode = _AsModule(lambda: decode_latents(models.latent_codec(), latents, chunk, device="meta"))
        before, peak = peak_bytes(decode, models, latents)
    return {"before": before, "peak": peak}


def main():
    from dynascene_core.models.denoiser import FEED_FORWARD_PIECES
    from dynascene_core.sampling.pipeline import SamplerSettings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="sd15")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--height", type=int, default=432)
    parser.add_argument("--width", type=int, default=768)
    args = parser.parse_args()
    models, mode = fake_models(args.config)
    size = (args.frames, args.height, args.width)
    print(f"{args.config}, fp16, {args.frames} frames {args.width}x{args.height}; GiB of live tensors")
    for pieces in sorted({1, FEED_FORWARD_PIECES}):
        r = unet_call_peak(models, mode, *size, pieces)
        print(f"guided U-Net call, feed-forward in {pieces} slice(s): before {r['before'] / GIB:.3f}, "
              f"peak {r['peak'] / GIB:.3f}")
    for chunk in sorted({8, SamplerSettings.vae_chunk}, reverse=True):
        r = vae_decode_peak(models, mode, *size, chunk)
        print(f"VAE decode, {chunk} frames per chunk: before {r['before'] / GIB:.3f}, peak {r['peak'] / GIB:.3f}")


if __name__ == "__main__":
    main()
