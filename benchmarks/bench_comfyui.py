"""Real-ComfyUI overhead of the pack: server start with the pack, and the camera-design workflow over HTTP.

Usage: COMFYUI_DIR=/path/to/ComfyUI python benchmarks/bench_comfyui.py [--runs 5]
Starts the same test server as tests/test_comfyui_host.py (127.0.0.1, temporary folders, torchvision stub).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from comfy_host.server import REPO_ROOT, ComfyServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        sys.exit("set COMFYUI_DIR to a ComfyUI checkout")
    with open(os.path.join(REPO_ROOT, "workflows", "api", "Design a camera move.json"), encoding="utf-8") as handle:
        prompt = json.load(handle)
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        with ComfyServer(comfy_dir, work, python=os.environ.get("COMFYUI_PYTHON")) as server:
            ready = time.perf_counter() - started
            times = []
            for run in range(args.runs):
                prompt["4"]["inputs"]["frames"] = 24 + run  # a new value each run, so nothing is cached
                begin = time.perf_counter()
                status, body = server.post_prompt(prompt)
                entry = server.wait_for_history(body["prompt_id"])
                times.append(time.perf_counter() - begin)
                assert status == 200 and entry["status"]["status_str"] == "success", entry["status"]
    print(f"{'measurement':<46} {'seconds':>8}")
    print(f"{'server start with the pack -> /system_stats':<46} {ready:>8.2f}")
    print(f"{'Design a camera move.json, POST -> history (median)':<46} {statistics.median(times):>8.3f}")
    print(f"{'Design a camera move.json, POST -> history (min)':<46} {min(times):>8.3f}")


if __name__ == "__main__":
    main()
