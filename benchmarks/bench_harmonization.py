"""Compositing benchmark: harmonization error (MSE / fMSE), edge colour, speed, before/after pictures.

    python benchmarks/bench_harmonization.py                    # everything on the CPU, prints Markdown tables
    python benchmarks/bench_harmonization.py --speed-only --device cuda      # GPU timing only (< 1 min)
    python benchmarks/bench_harmonization.py --pictures docs    # also writes the README's before/after pictures

Harmonization, in the style of image-harmonization benchmarks: three real photos of a person with a
known matte (``benchmarks/data/rembg_people``). The *source* frame is the photo as seen by a camera
with another exposure / white balance / tint (a known per-channel gain, clipped to [0, 1] like a
real camera); the new background is the original scene (``same``) or the original scene mirrored
left-right (``mirrored``: same light, different surroundings next to the person). The ground truth is
the original person over that background. Errors in 8-bit units squared: MSE over the image, fMSE
over the person (alpha > 0.5), before (person pasted as filmed) and after harmonization (light wrap
off, to measure harmonization alone).

Edges: a synthetic soft-edged disc filmed over red, composited onto green; the largest red value in
the edge band (0.05 < alpha < 0.95) for the naive paste, RVM-style foreground colour and the
estimated foreground colour (the person has no red, so any red is old background).

Speed: harmonization + edges (light wrap) with a given foreground colour, per 768×432 frame, over a
24-frame clip; and the foreground estimate used when no matting colour is given (CPU). With --out (or
$OUT) results are also written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynascene_core.compositing import (CompositeSettings, apply_gains, composite,  # noqa: E402
                                        estimate_foreground, harmonization_gains)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rembg_people")
PHOTOS = ("girl-1", "girl-2", "girl-3")
PERTURBATIONS = {                        # per-channel camera gains (R, G, B)
    "exposure +1 stop": (2.0, 2.0, 2.0),
    "exposure -1 stop": (0.5, 0.5, 0.5),
    "white balance warm": (1.25, 1.0, 0.75),
    "white balance cool": (0.8, 1.0, 1.25),
    "tint green": (0.85, 1.15, 0.85),
    "tint magenta": (1.15, 0.85, 1.15),
}
STRENGTHS = (0.5, 0.7, 1.0)


def load_photo(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, 3, H, W)`` frame and ``(1, 1, H, W)`` matte in [0, 1]."""
    from PIL import Image

    with Image.open(os.path.join(DATA, f"{name}.jpg")) as im:
        frame = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    with Image.open(os.path.join(DATA, f"{name}.alpha.png")) as im:
        alpha = torch.from_numpy(np.array(im.convert("L")))[None, None].float() / 255
    return frame, alpha


def errors(out: torch.Tensor, truth: torch.Tensor, alpha: torch.Tensor) -> tuple[float, float]:
    """(MSE, fMSE) in 8-bit units squared; fMSE over alpha > 0.5."""
    sq = ((out - truth) * 255) ** 2
    person = (alpha > 0.5).expand_as(sq)
    return float(sq.mean()), float(sq[person].mean())


def harmonization_table() -> dict:
    results = {}
    photos = [load_photo(name) for name in PHOTOS]
    for layout in ("same", "mirrored"):
        for perturbation, gain in PERTURBATIONS.items():
            row = {"before": np.zeros(2), **{s: np.zeros(2) for s in STRENGTHS}}
            for frame, alpha in photos:
                background = frame if layout == "same" else frame.flip(-1)
                source = (frame * torch.tensor(gain).view(1, 3, 1, 1)).clamp(0, 1)
                truth = alpha * frame + (1 - alpha) * background
                row["before"] += errors(alpha * source + (1 - alpha) * background, truth, alpha)
                for strength in STRENGTHS:
                    gains = harmonization_gains(source, alpha, background, strength, 0)
                    out = alpha * apply_gains(source, gains) + (1 - alpha) * background
                    row[strength] += errors(out, truth, alpha)
            results[(layout, perturbation)] = {k: v / len(photos) for k, v in row.items()}
    return results


def print_harmonization(results: dict) -> None:
    default = CompositeSettings().harmonize
    for layout in ("same", "mirrored"):
        print(f"\nnew background: {layout} — MSE / fMSE (8-bit², mean of {len(PHOTOS)} photos)\n")
        print("| perturbation | before | " + " | ".join(f"strength {s}" + (" (default)" if s == default else "")
                                                for s in STRENGTHS) + " |")
        print("|---|---|" + "---|" * len(STRENGTHS))
        ratios = {s: [] for s in STRENGTHS}
        for (lay, perturbation), row in results.items():
            if lay != layout:
                continue
            cells = [f"{row['before'][0]:.0f} / {row['before'][1]:.0f}"]
            for s in STRENGTHS:
                cells.append(f"{row[s][0]:.0f} / {row[s][1]:.0f}")
                ratios[s].append(row[s][1] / row["before"][1])
            print(f"| {perturbation} | " + " | ".join(cells) + " |")
        print("| fMSE after / before, mean over perturbations | | " +
              " | ".join(f"{np.mean(ratios[s]):.3f}" for s in STRENGTHS) + " |")


def soft_disc(n: int = 1, h: int = 96, w: int = 128):
    """A soft-edged disc (8-pixel edge) of colour (0, 0.35, 0.9) filmed over red, and a green background."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    alpha = ((30 - torch.sqrt((y - h / 2) ** 2 + (x - w / 2) ** 2)) / 8 + 0.5).clamp(0, 1).expand(n, 1, h, w)
    person = torch.tensor([0.0, 0.35, 0.9]).view(1, 3, 1, 1).expand(n, 3, h, w)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(n, 3, h, w)
    green = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1).expand(n, 3, h, w)
    return alpha * person + (1 - alpha) * red, alpha, person, green


def edge_table() -> dict:
    frames, alpha, person, green = soft_disc()
    band = ((alpha > 0.05) & (alpha < 0.95)).expand_as(alpha)
    plain = CompositeSettings(light_wrap=0.0, harmonize=0.0)
    outs = {
        "naive paste (source pixels)": alpha * frames + (1 - alpha) * green,
        "matting foreground colour (fgr)": composite(frames, green, alpha, person, plain),
        "estimated foreground colour": composite(frames, green, alpha, None, plain),
        "estimated, default settings": composite(frames, green, alpha),
    }
    return {name: (float(out[:, :1][band].max()), float(out[:, :1][band].mean())) for name, out in outs.items()}


def timed(fn, device: torch.device, repeats: int = 3) -> tuple[float, float]:
    """Best (wall seconds, process CPU seconds) of ``repeats`` runs after a warm-up. On a shared CPU
    the process CPU time is what the work costs; wall time also counts waiting for a core."""
    fn()
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def speed(device: torch.device, frames_n: int = 24, height: int = 432, width: int = 768,
          estimate: bool = True) -> dict:
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(frames_n, 3, height, width, generator=g).to(device)
    background = torch.rand(frames_n, 3, height, width, generator=g).to(device)
    alpha = torch.zeros(frames_n, 1, height, width, device=device)
    alpha[:, :, height // 5:, width // 3: width // 2] = 1
    fgr = frames.clone()
    result = {}
    settings = {"harmonization + light wrap (defaults)": CompositeSettings(),
                "harmonization only": CompositeSettings(light_wrap=0.0),
                "light wrap only": CompositeSettings(harmonize=0.0),
                "plain α blend (both off)": CompositeSettings(light_wrap=0.0, harmonize=0.0),
                "defaults + contact shadow": CompositeSettings(shadow=0.5)}
    for name, s in settings.items():
        seconds = timed(lambda: composite(frames, background, alpha, fgr, s), device)
        result[name] = [t / frames_n * 1000 for t in seconds]
    if estimate:
        few = slice(0, 4)
        seconds = timed(lambda: estimate_foreground(frames[few].cpu(), alpha[few].cpu()), torch.device("cpu"), 1)
        result["foreground estimate (pymatting, CPU)"] = [t / 4 * 1000 for t in seconds]
    return result


def pictures(folder: str) -> None:
    """Before/after: the person of girl-2 (hair filmed over a dark forest) composited onto the sky and
    mountains of girl-1's right part, naive paste versus the default matte-aware composite (estimated
    foreground colour, light wrap, harmonization)."""
    from PIL import Image

    from dynascene_core.conditioning import resize_cover_crop

    frame, alpha = load_photo("girl-2")
    scene, _ = load_photo("girl-1")
    background = resize_cover_crop(scene[..., scene.shape[-1] * 72 // 100:], *frame.shape[-2:]).clamp(0, 1)
    naive = alpha * frame + (1 - alpha) * background
    aware = composite(frame, background, alpha)

    def to_image(t: torch.Tensor) -> Image.Image:
        return Image.fromarray((t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8))

    def side_by_side(a: Image.Image, b: Image.Image) -> Image.Image:
        out = Image.new("RGB", (a.width * 2 + 8, a.height), "white")
        out.paste(a, (0, 0))
        out.paste(b, (a.width + 8, 0))
        return out

    os.makedirs(folder, exist_ok=True)
    full = side_by_side(to_image(naive), to_image(aware))
    full.resize((full.width * 2 // 3, full.height * 2 // 3), Image.LANCZOS).save(
        os.path.join(folder, "compositing_full.jpg"), quality=90)
    box = (250, 170, 410, 330)                                           # hair and hand at the head's side
    crops = [to_image(t).crop(box).resize((300, 300), Image.LANCZOS) for t in (naive, aware)]
    side_by_side(*crops).save(os.path.join(folder, "compositing_hair.jpg"), quality=92)
    print(f"wrote {folder}/compositing_full.jpg and {folder}/compositing_hair.jpg")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--speed-only", action="store_true", help="only the timing (what the GPU run needs)")
    p.add_argument("--pictures", default=None, help="folder for the before/after pictures")
    p.add_argument("--out", default=os.environ.get("OUT"), help="folder for results.json")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    report = {"device": str(device), "torch_threads": torch.get_num_threads(),
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    if not args.speed_only:
        table = harmonization_table()
        print_harmonization(table)
        report["harmonization"] = {f"{k[0]} | {k[1]}": {str(s): list(v) for s, v in row.items()}
                                   for k, row in table.items()}
        edges = edge_table()
        print("\nedge band red (max / mean) after compositing a disc filmed over red onto green\n")
        print("| composite | max red | mean red |\n|---|---|---|")
        for name, (worst, mean) in edges.items():
            print(f"| {name} | {worst:.3f} | {mean:.3f} |")
        report["edges"] = edges
    timing = speed(device, estimate=not args.speed_only or device.type == "cpu")
    print(f"\nms per 768×432 frame, {device} ({torch.get_num_threads()} torch threads), 24-frame clip, best of 3; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| composite | wall ms / frame | process CPU ms / frame |\n|---|---|---|")
    for name, (wall, cpu) in timing.items():
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    report["ms_per_frame"] = timing
    if args.pictures:
        pictures(args.pictures)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench_harmonization.json"), "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
