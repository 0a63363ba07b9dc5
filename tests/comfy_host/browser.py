"""ComfyUI's real frontend in headless Chromium (Playwright driving Debian's ``chromium``), for tests and pictures.

Playwright's own browser download is never used: ``CHROMIUM`` (default ``/usr/bin/chromium``) is launched.
The frontend's own calls do the work: ``app.loadGraphData``, ``app.graphToPrompt``, ``app.queuePrompt``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time

import numpy as np
from PIL import Image

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 2600, "height": 1300}  # large, so "fit view" keeps LiteGraph above its low-detail zoom

GRAPH_REPORT_JS = """() => {
  const registered = window.LiteGraph.registered_node_types;
  const nodes = window.app.graph.nodes;
  const widgetErrors = [];
  for (const n of nodes) {
    for (const w of n.widgets || []) {
      const o = w.options || {};
      if (w.type === "combo" && Array.isArray(o.values) && !o.values.includes(w.value))
        widgetErrors.push(`${n.type} #${n.id}: ${w.name} = ${JSON.stringify(w.value)} is not one of its choices`);
      if (w.type === "number" && ((o.min !== undefined && w.value < o.min) || (o.max !== undefined && w.value > o.max)))
        widgetErrors.push(`${n.type} #${n.id}: ${w.name} = ${w.value} is outside ${o.min}..${o.max}`);
    }
  }
  return {
    missing: nodes.filter(n => !(n.type in registered)).map(n => n.type),
    flagged: nodes.filter(n => n.has_errors).map(n => `${n.type} #${n.id}`),
    widgetErrors,
    boxes: nodes.map(n => ({id: n.id, type: n.type, title: n.title, box: Array.from(n.getBounding())})),
  };
}"""


@contextlib.contextmanager
def frontend_page(server_url: str):
    """A page with the frontend loaded from ``server_url``; yields ``(page, page_errors)``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(server_url + "/")
            page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=120_000)
            time.sleep(2)
            page.keyboard.press("Escape")  # the first-run template browser
            yield page, errors
        finally:
            browser.close()


def load_workflow(page, workflow: dict, settle_s: float = 20.0) -> None:
    """Load a UI workflow and wait until node sizes stop changing (video/image previews load late and grow
    their nodes, and only on screen): with the whole graph in view, until the network is idle and every
    video/image element has loaded, then until two reports a second apart agree."""
    page.evaluate("async graph => { await window.app.loadGraphData(graph); }", workflow)
    page.keyboard.press("Escape")
    fit_view(page)  # previews render (and grow their nodes) only on screen
    page.wait_for_load_state("networkidle")
    page.wait_for_function("""() => Array.from(document.querySelectorAll("video")).every(v => v.readyState >= 1)
                              && Array.from(document.querySelectorAll("img")).every(i => i.complete)""", timeout=60_000)
    time.sleep(3.0)
    deadline, last = time.monotonic() + settle_s, None
    while time.monotonic() < deadline:
        time.sleep(1.0)
        boxes = json.dumps(graph_report(page)["boxes"])
        if boxes == last:
            return
        last = boxes


def graph_report(page) -> dict:
    """Missing node types, nodes flagged with errors, widget values out of their choices/range, node boxes."""
    return page.evaluate(GRAPH_REPORT_JS)


def overlaps(boxes: list[dict]) -> list[str]:
    """Pairs of node bounding boxes (``[x, y, w, h]``, title bar included) that intersect."""
    found = []
    for i, a in enumerate(boxes):
        ax, ay, aw, ah = a["box"]
        for b in boxes[i + 1:]:
            bx, by, bw, bh = b["box"]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                found.append(f"'{a['title']}' #{a['id']} and '{b['title']}' #{b['id']}")
    return found


def graph_to_prompt(page) -> dict:
    """The frontend's own UI -> API conversion of the loaded graph (what Queue sends)."""
    return page.evaluate("async () => (await window.app.graphToPrompt()).output")


def fit_view(page) -> None:
    """Fit the canvas view to the whole graph (the frontend's "." shortcut)."""
    page.mouse.click(VIEWPORT["width"] // 2, VIEWPORT["height"] - 20)
    page.keyboard.press(".")
    time.sleep(1.5)


def screenshot_graph(page, path: str) -> Image.Image:
    """Fit the view to the whole graph, save a screenshot to ``path`` and return it cropped to the nodes."""
    fit_view(page)
    page.screenshot(path=path)
    return crop_to_graph(path)


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
