"""Render the shipped workflows in a real ComfyUI (headless Chromium) for the README and the template browser.

Not a test. Needs a ComfyUI checkout (``COMFYUI_DIR``), Debian's ``chromium`` and Playwright's Python package
(its browser download is not needed: the system Chromium is used). Writes ``docs/node_graph.png`` (the
"Video to a new scene" graph) and the ``workflows/<name>.jpg`` thumbnails::

    COMFYUI_DIR=/path/to/ComfyUI python tests/comfy_host/screenshot_workflows.py
"""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from comfy_host.browser import frontend_page, load_workflow, screenshot_graph  # noqa: E402
from comfy_host.model_files import FILES, write_input_files  # noqa: E402
from comfy_host.server import REPO_ROOT, ComfyServer  # noqa: E402

README_GRAPH = "Video to a new scene"
RUN_BEFORE_SHOT = ("Design a camera move",)
"""Workflows that need no model files: queued first, so the thumbnail shows their result in the graph."""


def main() -> None:
    paths = sorted(glob.glob(os.path.join(REPO_ROOT, "workflows", "*.json")))
    with tempfile.TemporaryDirectory() as work, ComfyServer(os.environ["COMFYUI_DIR"], work) as server:
        for folder, name in FILES.items():  # names only: the combos show them, nothing is run
            open(os.path.join(server.dirs["models"], folder, name), "wb").close()
        write_input_files(server.dirs["input"])
        with frontend_page(server.url) as (page, _errors):
            for path in paths:
                name = os.path.splitext(os.path.basename(path))[0]
                with open(path, encoding="utf-8") as handle:
                    load_workflow(page, json.load(handle))
                if name in RUN_BEFORE_SHOT:
                    before = set(server.get_json("/history"))
                    page.evaluate("async () => { await window.app.queuePrompt(0); }")
                    while not set(server.get_json("/history")) - before:
                        time.sleep(0.2)
                    time.sleep(2)  # previews appear in the nodes
                graph = screenshot_graph(page, os.path.join(work, "shot.png"))
                if name == README_GRAPH:
                    graph.save(os.path.join(REPO_ROOT, "docs", "node_graph.png"), optimize=True)
                graph.thumbnail((800, 800))
                graph.save(os.path.join(REPO_ROOT, "workflows", f"{name}.jpg"), quality=85, optimize=True)
                print("wrote", name)


if __name__ == "__main__":
    main()
