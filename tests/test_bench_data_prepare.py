"""The data-preparation benchmark runs with either video I/O: the pipeline's imageio-ffmpeg, or OpenCV's
bundled FFmpeg (what a GPU machine without an ffmpeg binary uses), and its projection follows from the
per-stage rates it reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("video_io,names", [("opencv", "OpenCV (MPEG-4 Part 2 source, PNG clip frames)"),
                                            ("imageio-ffmpeg", "imageio-ffmpeg (H.264 source, mp4 clips)")])
def test_benchmark_runs_and_projects_from_its_own_rates(tmp_path, video_io, names):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_data_prepare.py"), "--size", "320x180",
                    "--frames", "24", "--video-io", video_io, "--detector", "ssdlite320_mobilenet_v3_large",
                    "--out", str(tmp_path)], check=True, env=env, capture_output=True, timeout=600)
    report = json.loads((tmp_path / "data_prepare_throughput.json").read_text())
    assert report["video_io"] == names
    assert report["source"] == "320x180 @ 24 fps, 24 frames"
    rates = report["frames_per_second"]
    assert set(rates) == {"cuts", "decode+resize", "person", "motion", "matting", "camera", "write"}
    assert all(rate > 0 for rate in rates.values())
    # every frame through every stage, the video decoded twice: seconds per frame add up
    seconds_per_frame = sum(1 / rate for rate in rates.values()) + 1 / rates["decode+resize"]
    assert report["all_stages_frames_per_second"] == pytest.approx(1 / seconds_per_frame, rel=0.02)
    hours = 1000 * 3600 * 30 * seconds_per_frame / 3600
    assert report["projected_hours_for_1000_hours_of_30fps_footage"] == pytest.approx(hours, rel=0.02)
