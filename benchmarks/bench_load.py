"""Model loading benchmark: ``assemble_models`` on a full-size ``sd15`` file set (random fp16 values).

Writes (once, cached in ``--dir``) files in the published layouts — SD1.5-inpainting LDM single file
(U-Net + VAE), AnimateDiff ``mm_sd_v15_v2.ckpt``, ``CameraCtrl.ckpt``, a CLIP ViT-L/14 image encoder —
with the key layouts of ``tests/fixtures``, then times reading the files alone and the whole
``assemble_models`` call, each in a fresh process state (page cache warm after the first run).

    python benchmarks/bench_load.py --dir /tmp/dynascene_load --dtype float16
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
FILES = {"sd15_inpainting": ("sd15_inpainting_ldm.json.gz", "sd-v1-5-inpainting.safetensors"),
         "motion_module": ("mm_sd_v15_v2.json.gz", "mm_sd_v15_v2.ckpt"),
         "cameractrl": ("cameractrl.json.gz", "CameraCtrl.ckpt")}


def _random(shapes: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """fp16 values that keep activations finite: norm weights 1, vectors 0, matrices ~ 1/sqrt(fan-in)."""
    out = {}
    for name, shape in shapes.items():
        if len(shape) == 1 and "norm" in name and name.endswith("weight"):
            out[name] = torch.ones(shape, dtype=torch.float16)
        elif len(shape) <= 1:
            out[name] = torch.zeros(shape, dtype=torch.float16)
        else:
            out[name] = (torch.randn(shape, generator=generator) / math.sqrt(math.prod(shape[1:]))).half()
    return out


def write_files(folder: str) -> dict[str, str]:
    """Full-size random files in the published layouts; returns ``{ModelFiles field: path}``."""
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    paths = {}
    for field, (fixture, name) in FILES.items():
        path = paths[field] = os.path.join(folder, name)
        if os.path.exists(path):
            continue
        with gzip.open(os.path.join(FIXTURES, fixture), "rt", encoding="utf-8") as fh:
            tensors = _random(json.load(fh), generator)
        if name.endswith(".safetensors"):
            save_file(tensors, path)
        else:  # pickled files hold nested dicts; the loaders flatten them to these same dotted keys
            torch.save(tensors, path)
        del tensors
    paths["image_encoder"] = os.path.join(folder, "clip_vit_large_patch14.safetensors")
    if not os.path.exists(paths["image_encoder"]):
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        from dynascene_core.models.config import SD15_CLIP_VISION

        with torch.device("meta"):
            clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**SD15_CLIP_VISION))
        shapes = {k: list(v.shape) for k, v in clip.state_dict().items() if not k.endswith("position_ids")}
        save_file(_random(shapes, generator), paths["image_encoder"])
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/dynascene_load")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    paths = write_files(args.dir)

    from dynascene_core.checkpoints import ModelFiles, assemble_models
    from dynascene_core.checkpoints.io import read_weights

    start = time.perf_counter()
    for path in paths.values():
        read_weights(path)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    assembled = assemble_models(ModelFiles(**paths), device=args.device, dtype=getattr(torch, args.dtype))
    assemble_s = time.perf_counter() - start
    params = sum(p.numel() for p in assembled.models.parameters())
    result = {"read_files_s": round(read_s, 2), "assemble_models_s": round(assemble_s, 2),
              "overhead_s": round(assemble_s - read_s, 2), "parameters": params, "dtype": args.dtype,
              "device": args.device, "files": {k: os.path.basename(v) for k, v in paths.items()}}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
