"""Turn a folder of human videos into a DynaScene training set (paper §4 and its dataset pipeline).

    python -m dynascene_core.data.prepare SRC OUT [--config FILE] [--min-short-side N] [--rvm PATH]
                                          [--ray auto|ADDRESS] [--workers N]

Stages: sources → resolution → shot cuts (PySceneDetect) → exactly one person → motion (eq. 3) →
matting (RVM) → camera poses with a quality verdict → scene image → atomic clip write. ``OUT`` gets
``manifest.jsonl`` + ``clips/`` (the training format), ``review.csv`` (clips dropped for their camera),
``report.json``, ``contact_sheet.png`` and ``state/`` (what makes a rerun resume).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import os
import sys
import time

from ..io_utils import check_output_folder
from .prepare_config import load_prepare_config, override_settings
from .runner import StageBars, make_backend
from .scan import VideoScan
from .sources import list_sources, video_key
from .state import (check_run_config, read_clip_states, read_scan_state, record_run_config, remove_unfinished,
                    write_outputs, write_scan_state)


def check_packages(ray_address: str | None) -> None:
    """The packages the stages import, present before any work starts (a missing one would otherwise
    show up as every video dropped)."""
    import importlib.util

    needed = {"scenedetect": "scenedetect-headless", "imageio_ffmpeg": "imageio-ffmpeg"}
    if ray_address:
        needed["ray"] = "ray"
    missing = [package for module, package in needed.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise RuntimeError(f"data preparation needs {', '.join(missing)}: pip install -r requirements-data.txt")
    import imageio_ffmpeg

    try:  # a source build of imageio-ffmpeg has no ffmpeg of its own, and none may be on the PATH
        imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise RuntimeError(f"data preparation decodes and writes video with ffmpeg, and imageio-ffmpeg finds none "
                           f"({exc}): install its binary wheel (pip install imageio-ffmpeg) or put ffmpeg on the "
                           f"PATH") from None


def check_inputs(config: dict) -> None:
    """Load the person detector and RVM once here, so a missing or wrong file fails before any video."""
    from .build import load_matting_model
    from .people import make_person_detector

    load_matting_model(config["matting"]["rvm"], "cpu")
    make_person_detector(config["person"])


def _scan_progress(bars: StageBars, scan: VideoScan) -> None:
    stages = [d["stage"] for d in scan.drops]
    bars.done("probe")
    bars.done("resolution", int(scan.source is not None))
    bars.done("cuts", int(scan.source is not None and "resolution" not in stages))
    motion = len(scan.candidates) + stages.count("motion")
    bars.done("person", motion + stages.count("person"))
    bars.done("motion", motion)


def _build_progress(bars: StageBars, outcomes: list) -> None:
    stages = [o.drop["stage"] if o.drop else None for o in outcomes]
    bars.done("matting", len(outcomes))
    bars.done("camera", len(outcomes) - stages.count("matting"))
    written = stages.count(None)
    bars.done("scene", written)
    bars.done("write", written)


def run_prepare(src: str, out: str, config: dict, ray_address: str | None = None, progress: bool = True) -> dict:
    """Prepare ``src`` into ``out``; returns the report (also ``out/report.json``). Resumes a previous run."""
    from .report import contact_sheet, format_report, make_report, write_report

    started = time.perf_counter()
    paths = list_sources(src, config["sources"]["extensions"])
    if not paths:
        raise FileNotFoundError(f"{src}: no videos ({', '.join(config['sources']['extensions'])})")
    root = src if os.path.isdir(src) else os.path.dirname(os.path.abspath(src))
    keys = {path: video_key(path, root) for path in paths}
    check_output_folder(out, "OUT")
    check_run_config(out, config)
    check_packages(ray_address)
    check_inputs(config)
    try:
        backend = make_backend(ray_address, config)
    except ConnectionError as exc:
        raise RuntimeError(f"--ray {ray_address}: cannot connect to the Ray cluster ({exc})") from None
    os.makedirs(out, exist_ok=True)  # only now: a refused run leaves nothing behind
    record_run_config(out, config)
    remove_unfinished(out)
    finished = read_clip_states(out)
    scans: dict[str, VideoScan] = {}
    bars = StageBars(progress)
    running: dict[futures.Future, tuple[str, str]] = {}

    def submit_build(scan: VideoScan) -> None:
        pending = [c for c in scan.candidates if c.segment.clip_id(scan.key) not in finished]
        if pending:
            bars.expect("matting", len(pending))  # later stages count the clips that reach them
            running[backend.build(scan.source, pending, config, out)] = ("build", scan.path)

    try:
        for stage in ("probe", "resolution", "cuts"):
            bars.expect(stage, len(paths))
        for path in paths:
            scan = read_scan_state(out, keys[path])
            if scan is None:
                running[backend.scan(path, keys[path], config)] = ("scan", path)
                continue
            scans[path] = scan
            _scan_progress(bars, scan)
            submit_build(scan)
        while running:
            done, _ = futures.wait(list(running), return_when=futures.FIRST_COMPLETED)
            for future in done:
                kind, path = running.pop(future)
                result = future.result()
                if kind == "scan":
                    write_scan_state(out, result)
                    scans[path] = result
                    _scan_progress(bars, result)
                    submit_build(result)
                else:
                    finished.update({o.clip_id: o for o in result})
                    _build_progress(bars, result)
    except BaseException:
        backend.shutdown()
        bars.close()
        write_outputs(out, read_clip_states(out))  # everything finished so far stays usable
        raise
    backend.shutdown()
    bars.close()
    outcomes = read_clip_states(out)
    records = write_outputs(out, outcomes)
    report = make_report([scans[p] for p in paths], outcomes, time.perf_counter() - started)
    write_report(out, report)
    sheet = contact_sheet(out, records, config["run"]["contact_sheet_clips"])
    if sheet is not None:
        from ..video import write_image

        write_image(os.path.join(out, "contact_sheet.png"), sheet)
    if progress:
        print(format_report(report))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynascene_core.data.prepare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("src", help="folder of videos (searched recursively) or a text file listing video paths")
    parser.add_argument("out", help="output data set folder (rerun with the same folder to resume)")
    parser.add_argument("--config", help="YAML file with the settings to change (see dynascene_core/data/prepare.yaml)")
    parser.add_argument("--min-short-side", type=int, help="keep videos whose short side is at least N px (1080)")
    parser.add_argument("--rvm", help="Robust Video Matting weights (rvm_mobilenetv3.pth / rvm_resnet50.pth)")
    parser.add_argument("--person-weights", help="torchvision detector weights for the person filter")
    parser.add_argument("--workers", type=int, help="local worker processes (run.workers)")
    parser.add_argument("--ray", metavar="ADDRESS", help="run on Ray: 'auto' (running cluster, else a local one) "
                                                         "or a cluster address such as ray://head:10001")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or table")
    args = parser.parse_args(argv)
    try:
        config = load_prepare_config(args.config)
        for flag, section, key in (("--min-short-side", "resolution", "min_short_side"), ("--rvm", "matting", "rvm"),
                                   ("--person-weights", "person", "weights"), ("--workers", "run", "workers")):
            value = getattr(args, flag[2:].replace("-", "_"))
            if value is not None:
                config = override_settings(config, {section: {key: value}}, flag)
        run_prepare(args.src, args.out, config, args.ray, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"interrupted: finished clips are kept in {args.out}; run the same command again to resume",
              file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
