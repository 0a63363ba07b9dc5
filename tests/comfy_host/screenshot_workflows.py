"""Render the shipped workflows in a real ComfyUI (headless Chromium) for the README and the template browser.

Not a test. Needs a ComfyUI checkout (``COMFYUI_DIR``), Debian's ``chromium`` and ``pip install playwright``
(its browser download is not needed: the system Chromium is used). Writes ``docs/node_graph.png`` (the
``video_to_scene`` graph) and ``workflows/<name>.jpg`` thumbnails::

    COMFYUI_DIR=/path/to/ComfyUI python tests/comfy_host/screenshot_workflows.py
"""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from comfy_host.server import REPO_ROOT, ComfyServer  # noqa: E402

VIEWPORT = {"width": 2600, "height": 1300}  # large, so "fit view" keeps LiteGraph above its low-detail zoom
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def crop_to_graph(path: str) -> Image.Image:
    """Crop a screenshot to the nodes: inside the side bar, top bar, minimap and stats, around non-background pixels."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    left, top, right, bottom = 70, 100, width - 260, height - 120
    pixels = np.asarray(image).astype(int)[top:bottom, left:right]
    background = np.median(pixels.reshape(-1, 3), 0)
    ys, xs = np.where(np.abs(pixels - background).sum(-1) > 40)
    return image.crop((left + max(0, xs.min() - 16), top + max(0, ys.min() - 16),
                       left + min(pixels.shape[1], xs.max() + 16), top + min(pixels.shape[0], ys.max() + 16)))


def main() -> None:
    from playwright.sync_api import sync_playwright

    names = [os.path.splitext(os.path.basename(p))[0] for p in sorted(glob.glob(os.path.join(REPO_ROOT, "workflows", "*.json")))]
    with tempfile.TemporaryDirectory() as work:
        server = ComfyServer(os.environ["COMFYUI_DIR"], work).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(f"http://127.0.0.1:{server.port}/")
                page.wait_for_function("window.app && window.app.graph", timeout=60000)
                time.sleep(3)
                page.keyboard.press("Escape")  # the first-run template browser
                for name in names:
                    with open(os.path.join(REPO_ROOT, "workflows", f"{name}.json")) as fh:
                        page.evaluate("graph => window.app.loadGraphData(graph)", json.load(fh))
                    time.sleep(2)
                    page.keyboard.press("Escape")
                    page.mouse.click(VIEWPORT["width"] // 2, VIEWPORT["height"] - 20)
                    page.keyboard.press(".")  # fit the view to the whole graph
                    time.sleep(2)
                    shot = os.path.join(work, f"{name}.png")
                    page.screenshot(path=shot)
                    graph = crop_to_graph(shot)
                    if name == "video_to_scene":
                        graph.save(os.path.join(REPO_ROOT, "docs", "node_graph.png"), optimize=True)
                    graph.thumbnail((800, 800))
                    graph.save(os.path.join(REPO_ROOT, "workflows", f"{name}.jpg"), quality=85, optimize=True)
                    print("wrote", name)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
