"""GPU smoke test: every public entry point of the pack, run once on one GPU at full size.

Run it on a GPU machine before resolving any change to inference, training or nodes (CI has no GPU):

    python benchmarks/gpu_smoke.py                              # all parts
    python benchmarks/gpu_smoke.py --comfyui /path/to/ComfyUI   # the nodes part needs a ComfyUI checkout
    python benchmarks/gpu_smoke.py --parts generate,matting_camera --steps 2

Parts (random weights, nothing to download):
  generate        ``generate()`` on the ``sd15`` config, 24 frames 768x432, fp16, guided DDIM, one context window;
                  again over 40 frames with 24-frame windows, camera guidance 2 (three branches) and guidance
                  rescale 0.7, with the spatial position code on (``spatial_position="sinusoidal"``); then
                  the CLI ``python -m dynascene_core.generate --demo --device cuda`` (matting-free demo clip,
                  writes mp4s)
  nodes           the same 24-frame job through the pack's ComfyUI node functions inside a real ComfyUI host
                  (host VAE Loader / CLIP Vision Loader on full-size random files, Load Model (DynaScene) on a
                  random sd15 DynaScene file, Background Sampler, host VAE Decode of the sampler's LATENT)
  training        a few Stage I and Stage II optimizer steps on ``sd15`` in bf16 (768x432; 24 frames in stage II),
                  gradient checkpointing on; Stage I again with the spatial position code on
  matting_camera  RVM matting of 24 frames at 768x432 on the GPU, and camera estimation from CUDA tensors on a
                  pan (rotation only) and an orbit (bundle adjustment, focal estimated; needs pycolmap), both by
                  the fast method, and the orbit by the accurate method (SIFT matches)

Prints one line per part (time, peak GPU memory) and exits non-zero if any part fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

PARTS = ("generate", "nodes", "training", "matting_camera")


def _inputs(frames: int, height: int, width: int, seed: int = 0):
    from dynascene_core.camera import make_preset

    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(frames, 3, height, width, generator=g)
    alpha = torch.zeros(frames, 1, height, width)
    alpha[:, :, height // 4:, width // 3: 2 * width // 3] = 1
    scene = torch.rand(3, height + 40, width + 64, generator=g)  # another size: fitted by the pipeline
    return pixels, alpha, scene, make_preset("orbit_left", frames)


def _check_video(name: str, video: torch.Tensor, frames: int, height: int, width: int) -> None:
    if tuple(video.shape) != (frames, 3, height, width) or not torch.isfinite(video).all():
        raise AssertionError(f"{name}: expected finite ({frames}, 3, {height}, {width}), got {tuple(video.shape)}")


def part_generate(args, device) -> str:
    from dynascene_core.camera import camera_condition
    from dynascene_core.conditioning import DiffusersVAECodec
    from dynascene_core.generate import main as generate_cli
    from dynascene_core.models import DynaSceneConfig, DynaSceneModels
    from dynascene_core.sampling.pipeline import SamplerSettings, generate

    details = []
    for frames, camera_guidance, rescale, position in ((args.frames, 0.0, 0.0, None),
                                                       (args.frames + 16, 2.0, 0.7, "sinusoidal")):
        config = DynaSceneConfig.preset("sd15")
        config.spatial_position = position
        models = DynaSceneModels.build(config, device=device, dtype=torch.float16).eval()
        codec = DiffusersVAECodec(models.vae)
        pixels, alpha, scene, trajectory = _inputs(frames, args.height, args.width)
        start = time.perf_counter()
        result = generate(models, codec, models.image_encoder, pixels, alpha, scene,
                          camera_condition(trajectory, args.height, args.width), frames,
                          SamplerSettings(steps=args.steps, context_length=24, context_overlap=4,
                                          camera_guidance=camera_guidance, guidance_rescale=rescale), device=device)
        torch.cuda.synchronize()
        _check_video("background", result.background, frames, args.height, args.width)
        details.append(f"{frames} frames/{len(result.windows)} windows/camera guidance {camera_guidance:g}"
                       f"/rescale {rescale:g}/position {position or 'none'} "
                       f"{time.perf_counter() - start:.1f}s")
        del models, codec
        torch.cuda.empty_cache()
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:  # the CLI writes mp4s: without ffmpeg it cannot finish
        return "; ".join(details) + f"; CLI --demo not run (no ffmpeg: {exc})"
    with tempfile.TemporaryDirectory() as out:
        code = generate_cli(["--demo", "--device", "cuda", "--steps", "2", "--out", out])
        if code != 0 or not os.path.getsize(os.path.join(out, "composite.mp4")):
            raise AssertionError(f"generate --demo --device cuda exited {code}")
    return "; ".join(details) + "; CLI --demo ok"


def _import_comfyui(path: str):
    """Import a ComfyUI checkout in-process on the GPU and load this pack as a custom node."""
    import asyncio
    import shutil

    work = tempfile.mkdtemp(prefix="comfyui-smoke-")
    host = os.path.join(work, "ComfyUI")
    shutil.copytree(path, host, ignore=shutil.ignore_patterns(".git", "custom_nodes", "models", "output", "input"))
    os.makedirs(os.path.join(host, "custom_nodes"))
    os.symlink(ROOT, os.path.join(host, "custom_nodes", "comfyui-dynascene"))
    sys.path.insert(0, host)
    os.chdir(host)
    from comfy.cli_args import args as cli_args

    cli_args.cpu = False
    import utils.extra_config  # noqa: F401  (before nodes: nodes puts comfy/ first on sys.path)
    import nodes as host_nodes

    asyncio.run(host_nodes.init_extra_nodes(init_api_nodes=False))
    if "DynaSceneSampler" not in host_nodes.NODE_CLASS_MAPPINGS:
        raise AssertionError("the DynaScene pack did not register its nodes in ComfyUI (see the import log)")
    return host_nodes, host


def part_nodes(args, device) -> str:
    if not args.comfyui:
        raise AssertionError("needs a ComfyUI checkout: pass --comfyui DIR or set COMFYUI_DIR")
    host_nodes, host = _import_comfyui(args.comfyui)
    import folder_paths
    from safetensors.torch import save_file

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from comfy_host.model_files import clip_vit_l_state_dict, sd_vae_state_dict
    from dynascene_core.checkpoints import save_dynascene
    from dynascene_core.models import DynaSceneModels

    models_dir = folder_paths.models_dir
    generator = torch.Generator().manual_seed(0)
    files = {"vae": "sd-vae.safetensors", "clip_vision": "clip-vit-l.safetensors", "dynascene": "sd15-random.safetensors"}
    for folder in files:
        os.makedirs(os.path.join(models_dir, folder), exist_ok=True)
        folder_paths.add_model_folder_path(folder, os.path.join(models_dir, folder))
    save_file(sd_vae_state_dict(generator), os.path.join(models_dir, "vae", files["vae"]))
    save_file(clip_vit_l_state_dict(generator), os.path.join(models_dir, "clip_vision", files["clip_vision"]))
    save_dynascene(os.path.join(models_dir, "dynascene", files["dynascene"]),
                   DynaSceneModels.build("sd15", device=device, dtype=torch.float16))
    torch.cuda.empty_cache()
    mapping = host_nodes.NODE_CLASS_MAPPINGS
    start = time.perf_counter()
    vae = mapping["VAELoader"]().load_vae(files["vae"])[0]
    clip_vision = mapping["CLIPVisionLoader"]().load_clip(files["clip_vision"])[0]
    model = getattr(mapping["DynaSceneLoadModel"](), mapping["DynaSceneLoadModel"].FUNCTION)(files["dynascene"])[0]
    pixels, alpha, scene, trajectory = _inputs(args.frames, args.height, args.width)
    sampler = mapping["DynaSceneSampler"]()
    inputs = {k: v for k, v in mapping["DynaSceneSampler"].INPUT_TYPES()["required"].items()}
    kwargs = {name: spec[1]["default"] for name, spec in inputs.items() if len(spec) > 1 and "default" in spec[1]}
    kwargs.update(dynascene_model=model, vae=vae, clip_vision=clip_vision, scene_image=scene.permute(1, 2, 0)[None],
                  images=pixels.permute(0, 2, 3, 1), mask=alpha[:, 0], camera=trajectory, steps=args.steps)
    out = sampler.sample(**kwargs)  # its host entry point (FUNCTION) is the async wrapper of this
    background, latent = out[0], out[2]
    decoded = mapping["VAEDecode"]().decode(vae, latent)[0]
    torch.cuda.synchronize()
    if decoded.shape[0] != args.frames:
        raise AssertionError(f"host VAE Decode of the sampler's LATENT gave {decoded.shape[0]} frames, "
                             f"expected {args.frames}")
    _check_video("node background", background.permute(0, 3, 1, 2), args.frames, args.height, args.width)
    return f"sampler node {time.perf_counter() - start:.1f}s (loaders included); host VAE Decode -> {decoded.shape[0]} frames"


def part_training(args, device) -> str:
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from bench_training import bench

    details = []
    for stage, position in ((1, None), (2, None), (1, "sinusoidal")):
        bargs = argparse.Namespace(device=str(device), precision="bf16", preset="sd15", height=args.height,
                                   width=args.width, frames=args.frames, batch1=3, batch2=1, steps=args.train_steps,
                                   warmup=1, profile=None, spatial_position=position)
        result = bench(bargs, stage, checkpointing=True)
        details.append(f"stage {stage}{' (position code)' if position else ''} (batch {result['batch']}, "
                       f"{result['frames']} frames) {result['step_s']:.2f} s/step "
                       f"{result['peak_GiB']:.1f} GiB {result['TFLOPs']:.0f} TFLOP/s")
        torch.cuda.empty_cache()
    return "; ".join(details)


def part_matting_camera(args, device) -> str:
    from dynascene_core.camera import demo_clip, estimate_trajectory
    from dynascene_core.matting import RobustVideoMatting, matte_video

    torch.manual_seed(0)
    rvm = RobustVideoMatting("mobilenetv3").eval().to(device, torch.float16)
    pixels = torch.rand(args.frames, 3, args.height, args.width)
    start = time.perf_counter()
    matte = matte_video(rvm, pixels.to(device))
    torch.cuda.synchronize()
    t_matting = time.perf_counter() - start
    if matte.alpha.shape != (args.frames, 1, args.height, args.width):
        raise AssertionError(f"matting: alpha shape {tuple(matte.alpha.shape)}")
    rates = []
    # the rotation path, bundle adjustment with the focal estimated, and the accurate method's SIFT matches
    for preset, method in (("pan_right", "fast"), ("orbit_left", "fast"), ("orbit_left", "accurate")):
        clip = demo_clip(num_frames=args.frames, height=288, width=512, preset=preset)
        frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float().div(255).to(device)
        masks = torch.from_numpy(clip.masks).float()[:, None].to(device)
        start = time.perf_counter()
        trajectory, stats = estimate_trajectory(frames, masks, method=method)
        t_camera = time.perf_counter() - start
        if len(trajectory) != args.frames:
            raise AssertionError(f"camera estimation returned {len(trajectory)} poses for {args.frames} frames")
        rates.append(f"{args.frames / t_camera:.0f} fps ({method}: {stats.mode}, {stats.quality.verdict}, "
                     f"{stats.quality.tracker})")
    return f"matting {args.frames / t_matting:.0f} fps; camera estimation {'; '.join(rates)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--height", type=int, default=432)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--steps", type=int, default=3, help="sampling steps per generation")
    parser.add_argument("--train-steps", type=int, default=3, help="timed optimizer steps per training stage")
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_DIR"), help="ComfyUI checkout for the nodes part")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: gpu_smoke.py needs a CUDA GPU", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {args.frames} frames {args.width}x{args.height}")
    functions = {"generate": part_generate, "nodes": part_nodes, "training": part_training,
                 "matting_camera": part_matting_camera}
    results, failed = [], False
    for name in args.parts.split(","):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            detail, ok = functions[name](args, device), True
        except Exception as exc:  # report every part, then fail
            traceback.print_exc()
            detail, ok = f"{type(exc).__name__}: {exc}".splitlines()[0][:300], False
            failed = True
        row = {"part": name, "ok": ok, "seconds": round(time.perf_counter() - start, 1),
               "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "detail": detail}
        results.append(row)
        print(f"{'PASS' if ok else 'FAIL'} {name:15s} {row['seconds']:7.1f} s  peak {row['peak_gib']:6.2f} GiB  {detail}",
              flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "parts": results}, fh,
                      indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
