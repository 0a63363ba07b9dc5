"""Headless DynaScene: ``python -m dynascene_core.generate`` — no ComfyUI needed.

Typical use::

    python -m dynascene_core.generate --video dance.mp4 --rvm rvm_mobilenetv3.pth --scene beach.jpg \\
        --preset dolly_in+pan_right --sd15 sd-v1-5-inpainting.ckpt --motion-module mm_sd_v15_v2.ckpt \\
        --dynascene dynascene_stage2.safetensors --clip-vision clip_vision_l.safetensors --out outputs/beach

    python -m dynascene_core.generate --demo          # built-in synthetic clip, the shipped trained small model

Writes ``background.mp4``, ``composite.mp4``, ``camera.png`` (trajectory plot), ``camera.txt`` (the
trajectory used, RealEstate10K format) and ``run.json`` (settings and model load reports) to ``--out``,
each atomically, and only after every input was read and the generation succeeded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict

import numpy as np
import torch

from .camera import (EASINGS, ESTIMATION_SIDE, CameraTrajectory, camera_condition, canonical_easing, demo_clip,
                     estimate_trajectory, make_preset, plot_trajectory)
from .camera.synthetic import PROOF_DETAIL
from .checkpoints import ModelFiles, assemble_models
from .cli import CommandParser, progress_callback, run_command
from .compositing import CompositeSettings
from .conditioning import resize_cover_crop
from .io_utils import atomic_open
from .sampling.pipeline import GenerationInputError, SamplerSettings, generate
from .sampling.schedule import RECOMMENDED_STEPS, SAMPLERS
from .video import frame_rate, iter_frames, matte_from_frames, to_tensor, write_image, write_video

log = logging.getLogger("dynascene.generate")

DEMO_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "demo",
                          "dynascene_small.safetensors")
"""The trained ``small`` model shipped with the repository (``benchmarks/train_proof.sh`` makes it); ``--demo`` uses it."""
DEMO_SCENE_SEED = 3_000_000
"""The demo room: a seed no proof training, validation or test clip uses (``training.prepare_proof``), so the
demo is unseen by training and by the choice of its sampler settings."""
DEMO_SAMPLING = {"sampler": "dpmpp_2m", "steps": 15, "camera_guidance": 4.0, "camera_guidance_end": 0.5}
"""``--demo``'s sampler settings (each flag overrides its own): those the proof's validation split chose for
the small model (BENCHMARKS.md, "Camera guidance")."""
DEMO_SIZE = (64, 96)
"""``(height, width)`` of the demo clip: the resolution the small model was trained at."""

def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    return args


def build_parser() -> CommandParser:
    p = CommandParser(prog="python -m dynascene_core.generate", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("inputs")
    src.add_argument("--demo", action="store_true",
                     help=f"run the trained small model shipped in {os.path.relpath(DEMO_MODEL)} on a built-in "
                          "synthetic clip (a room it never saw, a preset camera; 64x96 pixels)")
    src.add_argument("--video", help="video file or frame folder with the person")
    src.add_argument("--mask", help="matte video/frame folder (white = person); else --rvm runs matting")
    src.add_argument("--rvm", help="Robust Video Matting weights (rvm_mobilenetv3.pth / rvm_resnet50.pth)")
    src.add_argument("--scene", help="scene image (any size: resized to cover and centre-cropped)")
    src.add_argument("--max-frames", type=int, default=None)
    src.add_argument("--width", type=int, default=None, help="output width (multiple of 8; default: input's, "
                     "cropped down to a multiple of 8)")
    src.add_argument("--height", type=int, default=None)
    cam = p.add_argument_group("camera (one of)")
    cam.add_argument("--camera", help="pose file (RealEstate10K or TUM); its intrinsics are fitted to the output "
                                      "size assuming square pixels")
    cam.add_argument("--preset", help="preset or combination, e.g. dolly_in+pan_right")
    cam.add_argument("--estimate", action="store_true", help="estimate the camera from the input video")
    cam.add_argument("--speed", type=float, default=1.0)
    cam.add_argument("--easing", default="linear", type=canonical_easing, choices=EASINGS,
                     help="timing of a preset move (ease-in style spellings are accepted too)")
    cam.add_argument("--fov", type=float, default=None, help="field of view for --estimate (degrees, long side)")
    mod = p.add_argument_group("model files")
    mod.add_argument("--dynascene", action="append", default=[], help="DynaScene .safetensors (repeatable)")
    mod.add_argument("--sd15", help="SD1.5 inpainting checkpoint (.safetensors/.ckpt) or diffusers folder")
    mod.add_argument("--motion-module", help="AnimateDiff motion module (mm_sd_v15_v2.ckpt)")
    mod.add_argument("--cameractrl", help="CameraCtrl.ckpt")
    mod.add_argument("--vae", help="SD VAE (default: the SD1.5 checkpoint's own)")
    mod.add_argument("--clip-vision", "--clip", dest="clip",
                     help="CLIP ViT-L/14 image encoder (transformers folder or single file)")
    smp = p.add_argument_group("sampling")
    defaults = SamplerSettings()
    demo = DEMO_SAMPLING
    smp.add_argument("--steps", type=int, default=None,
                     help=f"sampling steps (default {defaults.steps}; {demo['steps']} with --demo); recommended: "
                          + ", ".join(f"{k} {v}" for k, v in RECOMMENDED_STEPS.items()))
    smp.add_argument("--sampler", choices=list(SAMPLERS), default=None,
                     help=f"solver (default {defaults.sampler}; {demo['sampler']} with --demo)")
    smp.add_argument("--guidance", type=float, default=defaults.guidance_scale,
                     help="classifier-free guidance on the scene image (1 = off)")
    smp.add_argument("--camera-guidance", type=float, default=None,
                     help="push the background further along the requested camera, against a still one "
                          f"(default {defaults.camera_guidance:g} = off, the paper's sampler; "
                          f"{demo['camera_guidance']:g} with --demo; one more U-Net branch per step it acts on)")
    smp.add_argument("--camera-guidance-end", type=float, default=None,
                     help="share of the noise schedule, from the noisiest end, that camera guidance acts on "
                          f"(as ComfyUI's end_percent; default {defaults.camera_guidance_end:g} = every step, "
                          f"{demo['camera_guidance_end']:g} with --demo)")
    smp.add_argument("--guidance-rescale", type=float, default=defaults.guidance_rescale,
                     help="pull the guided prediction's spread back towards the conditional prediction's by this "
                          "share (0 = off; 0.7 in Lin et al. 2024): against the over-contrast of strong guidance")
    smp.add_argument("--eta", type=float, default=defaults.eta)
    smp.add_argument("--seed", type=int, default=defaults.seed)
    smp.add_argument("--context-length", "--window", dest="window", type=int, default=defaults.context_length,
                     help="context window length (frames)")
    smp.add_argument("--context-overlap", "--overlap", dest="overlap", type=int, default=defaults.context_overlap,
                     help="frames shared by neighbouring context windows")
    smp.add_argument("--foreground-reinjection", "--reinject", dest="reinject", action="store_true",
                     help="paper eq. 4 foreground re-injection")
    smp.add_argument("--vae-chunk", type=int, default=defaults.vae_chunk)
    comp = p.add_argument_group("compositing (the person over the new background)")
    look = CompositeSettings()
    comp.add_argument("--feather", type=int, default=look.feather, help="edge softness: soften the matte edge over "
                      "this many pixels")
    comp.add_argument("--light-wrap", type=float, default=look.light_wrap, help="wrap strength 0-1: the new "
                      "background's light spilling over the person's edge")
    comp.add_argument("--harmonize", type=float, default=look.harmonize, help="harmonization strength 0-1: adapt "
                      "the person's exposure and colour balance to the new background (0 = off)")
    comp.add_argument("--shadow", type=float, default=look.shadow, help="contact shadow strength 0-1 (0 = off)")
    comp.add_argument("--shadow-angle", type=float, default=look.shadow_angle, help="shadow direction in degrees "
                      "from straight down (positive = to the right, within +-80)")
    run = p.add_argument_group("run")
    run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    run.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default=None,
                     help="default: float16 on CUDA, float32 on CPU")
    run.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                     choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                     help="torch.compile the U-Net (faster steps on a GPU after a one-time compile of tens of "
                     "seconds, cached by inductor for later runs); MODE: default, reduce-overhead (CUDA graphs) "
                     "or max-autotune-no-cudagraphs (tunes every kernel: minutes)")
    run.add_argument("--out", default=None, help="output folder (default outputs/demo or outputs/<video name>)")
    return p


def composite_settings(args: argparse.Namespace) -> CompositeSettings:
    return CompositeSettings(feather=args.feather, light_wrap=args.light_wrap, harmonize=args.harmonize,
                             shadow=args.shadow, shadow_angle=args.shadow_angle)


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse inconsistent command lines before reading any file."""
    try:
        composite_settings(args).validate()
    except ValueError as exc:
        p.error(str(exc))
    for flag in ("width", "height"):
        value = getattr(args, flag)
        if value is not None and (value < 8 or value % 8):
            p.error(f"--{flag} must be a positive multiple of 8, got {value}")
    if args.demo:
        given = [f"--{f.replace('_', '-')}" for f in ("video", "mask", "rvm", "scene", "camera", "estimate", "sd15",
                                                     "motion_module", "cameractrl", "vae", "clip")
                 if getattr(args, f)] + (["--dynascene"] if args.dynascene else [])
        if given:
            p.error(f"--demo uses the built-in clip and the shipped small model; drop {', '.join(given)} (only "
                    f"--preset, sizes and sampling options apply)")
        if not os.path.isfile(DEMO_MODEL):
            p.error(f"--demo needs the trained small model {DEMO_MODEL}, which is missing: restore it from the "
                    "repository (git checkout -- models/demo) or train it with benchmarks/train_proof.sh")
        return
    for flag in ("video", "scene"):
        if not getattr(args, flag):
            p.error(f"--{flag} is required (or use --demo)")
    if not (args.mask or args.rvm):
        p.error("give the person's matte with --mask, or matting weights with --rvm")
    if sum(bool(x) for x in (args.camera, args.preset, args.estimate)) != 1:
        p.error("give exactly one of --camera FILE, --preset NAME or --estimate")
    if not (args.dynascene or args.sd15):
        p.error("give model files: --dynascene FILE, or --sd15 FILE with --motion-module FILE")
    if not args.clip and not args.dynascene:
        p.error("--clip-vision (CLIP ViT-L/14 image encoder) is required unless a DynaScene file holds it")
    for flag in ("video", "mask", "rvm", "scene", "camera", "sd15", "motion_module", "cameractrl", "vae", "clip"):
        path = getattr(args, flag)
        if path and not os.path.exists(path):
            p.error(f"--{flag.replace('_', '-')}: {path} does not exist")
    for path in args.dynascene:
        if not os.path.exists(path):
            p.error(f"--dynascene: {path} does not exist")


def output_size(width: int, height: int, args) -> tuple[int, int]:
    """(W, H): the requested size, else the input's cropped down to multiples of 8 (aspect kept
    when only one side is given)."""
    if args.width and args.height:
        return args.width, args.height
    if args.width or args.height:
        scale = (args.width / width) if args.width else (args.height / height)
        return (args.width or int(width * scale) // 8 * 8), (args.height or int(height * scale) // 8 * 8)
    return width // 8 * 8, height // 8 * 8


def _read_image(path: str) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).float().div_(255)
    except (UnidentifiedImageError, OSError) as exc:
        raise GenerationInputError(f"{path}: not a readable image ({exc})") from exc


def _read_at_output_size(path: str, args, mask: bool = False, size: tuple[int, int] | None = None
                         ) -> tuple[torch.Tensor, tuple[int, int]]:
    """A video file or frame folder at the output size ``size`` (W, H; None: :func:`output_size` of its own), each
    chunk of eight frames resized as it is read, so a 4K video is never held whole at its size: frames ``(F, 3, H, W)``
    in [0, 1], or for a mask video its matte ``(F, 1, H, W)``; and the size."""
    parts = []
    for chunk in iter_frames(path, chunk=8, max_frames=args.max_frames):
        size = size or output_size(chunk.shape[2], chunk.shape[1], args)
        images = torch.from_numpy(matte_from_frames(chunk))[:, None] if mask else to_tensor(chunk)
        parts.append(resize_cover_crop(images, size[1], size[0]).clamp_(0, 1))
    if not parts:
        raise GenerationInputError(f"{path}: video has no frames")
    return torch.cat(parts), size


def load_inputs(args, device, dtype):
    """-> frames (F,3,H,W), alpha (F,1,H,W), foreground colour (F,3,H,W) or None, scene (3,h,w), trajectory,
    fps — all at the output size. The foreground colour is RVM's ``fgr`` when --rvm mattes the video.

    The cheap inputs (scene image, video, matte) are read and checked before matting or estimation."""
    if args.demo:
        clip = demo_clip(num_frames=args.max_frames or 16, height=args.height or DEMO_SIZE[0],
                         width=args.width or DEMO_SIZE[1], preset=args.preset or "orbit_left", seed=DEMO_SCENE_SEED,
                         detail=PROOF_DETAIL)
        frames = to_tensor(clip.frames)
        alpha = torch.from_numpy(clip.masks).float()[:, None]
        scene = to_tensor(clip.scene_image[None])[0]
        return frames, alpha, None, scene, clip.trajectory, 8.0
    scene = _read_image(args.scene)
    frames, size = _read_at_output_size(args.video, args)
    foreground = None
    if args.mask:
        alpha, _ = _read_at_output_size(args.mask, args, mask=True, size=size)
        if len(alpha) != len(frames):
            raise GenerationInputError(f"{args.mask}: {len(alpha)} mask frames but the video has {len(frames)}")
    else:
        from .matting import load_rvm, matte_video

        rvm = load_rvm(args.rvm, device=device)
        matted = matte_video(rvm, frames, progress=progress_callback("matting", "frame"))
        alpha, foreground = matted.alpha, matted.foreground
        del rvm
    # intrinsics are fitted to the output size (square pixels) by camera_condition
    if args.camera:
        trajectory = CameraTrajectory.load(args.camera)
    elif args.preset:
        trajectory = make_preset(args.preset, len(frames), speed=args.speed, easing=args.easing)
    else:
        trajectory, stats = estimate_trajectory(frames, alpha, fov_deg=args.fov, longer_side=ESTIMATION_SIDE,
                                                progress=progress_callback("camera estimation", "frame"))
        log.info("camera estimated (%s mode, mean confidence %.2f)", stats.mode, float(np.mean(stats.confidence)))
    if len(trajectory) != len(frames):
        log.warning("camera has %d frames, video %d: resampling the camera", len(trajectory), len(frames))
        trajectory = trajectory.resample(len(frames))
    return frames, alpha, foreground, scene, trajectory, frame_rate(args.video)


def load_models(args, device, dtype):
    if args.demo:
        files = ModelFiles(dynascene=[DEMO_MODEL])
    else:
        files = ModelFiles(dynascene=args.dynascene, sd15_inpainting=args.sd15, motion_module=args.motion_module,
                           cameractrl=args.cameractrl, vae=args.vae, image_encoder=args.clip)
    assembled = assemble_models(files, device=device, dtype=dtype)
    return assembled.models, [r.to_dict() for r in assembled.reports]


def main(argv=None) -> int:
    """Exit status 0 on success, 1 with one ``error:`` line for bad input, 2 for a bad command line."""
    return run_command(_run, argv)


def _run(argv) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if device.type == "cuda" else torch.float32)
    out = args.out or os.path.join("outputs", "demo" if args.demo else os.path.splitext(os.path.basename(args.video))[0])
    given = {name: getattr(args, name) for name in DEMO_SAMPLING if getattr(args, name) is not None}
    sampling = {**(DEMO_SAMPLING if args.demo else {}), **given}  # flags given win over the demo's settings
    settings = SamplerSettings(**sampling, guidance_scale=args.guidance, guidance_rescale=args.guidance_rescale,
                               eta=args.eta, seed=args.seed,
                               context_length=args.window, context_overlap=args.overlap,
                               foreground_reinjection=args.reinject, vae_chunk=args.vae_chunk,
                               compositing=composite_settings(args))
    frames, alpha, foreground, scene, trajectory, fps = load_inputs(args, device, dtype)
    models, reports = load_models(args, device, dtype)
    if args.compile:
        models.denoiser.compile_unet(**({} if args.compile == "default" else {"mode": args.compile}))
    n, _, height, width = frames.shape
    start = time.perf_counter()
    result = generate(models, models.latent_codec(), models.image_encoder, frames, alpha, scene,
                      camera_condition(trajectory, height, width), len(trajectory), settings,
                      progress_callback("sampling", "step"), device, foreground=foreground,
                      decode_progress=progress_callback("decoding", "frame"))
    os.makedirs(out, exist_ok=True)
    write_video(os.path.join(out, "background.mp4"), result.background, fps)
    write_video(os.path.join(out, "composite.mp4"), result.composite, fps)
    write_image(os.path.join(out, "camera.png"), plot_trajectory(trajectory))
    trajectory.save(os.path.join(out, "camera.txt"))
    with atomic_open(os.path.join(out, "run.json")) as fh:
        json.dump({"frames": n, "size": [width, height], "fps": fps, "device": str(device), "dtype": str(dtype),
                   "settings": asdict(settings), "windows": [[w.start, w.stop] for w in result.windows],
                   "seconds": round(time.perf_counter() - start, 2), "model_files": reports}, fh, indent=1)
    log.info("wrote %s/{background,composite}.mp4, camera.png, camera.txt, run.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
