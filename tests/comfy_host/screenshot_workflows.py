"""Render the README's picture of the "Video to a new scene" graph in a real ComfyUI (headless Chromium).

Not a test. Needs a ComfyUI checkout (``COMFYUI_DIR``), Debian's ``chromium`` and Playwright's Python package
(its browser download is not needed: the system Chromium is used). Writes ``docs/node_graph.png``; the
template thumbnails (``workflows/<name>.jpg``) show results instead and come from
``benchmarks/workflow_thumbnails.py``::

    COMFYUI_DIR=/path/to/ComfyUI python tests/comfy_host/screenshot_workflows.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from comfy_host.browser import frontend_page, load_workflow, screenshot_graph  # noqa: E402
from comfy_host.model_files import FILES, write_input_files  # noqa: E402
from comfy_host.server import REPO_ROOT, ComfyServer  # noqa: E402

README_GRAPH = "Video to a new scene"


def main() -> None:
    with tempfile.TemporaryDirectory() as work, ComfyServer(os.environ["COMFYUI_DIR"], work) as server:
        for folder, name in FILES.items():  # names only: the combos show them, nothing is run
            open(os.path.join(server.dirs["models"], folder, name), "wb").close()
        write_input_files(server.dirs["input"])
        with frontend_page(server.url) as (page, _errors):
            with open(os.path.join(REPO_ROOT, "workflows", f"{README_GRAPH}.json"), encoding="utf-8") as handle:
                load_workflow(page, json.load(handle))
            graph = screenshot_graph(page, os.path.join(work, "shot.png"))
            graph.save(os.path.join(REPO_ROOT, "docs", "node_graph.png"), optimize=True)
            print("wrote docs/node_graph.png")


if __name__ == "__main__":
    main()
