"""The shipped workflows in ComfyUI's real frontend, in a real browser (headless Chromium via Playwright).

Needs ``COMFYUI_DIR`` (as ``test_comfyui_host.py``), Playwright's Python package and Debian's Chromium
(``CHROMIUM``, default ``/usr/bin/chromium``); skipped otherwise (CI turns that skip into a failure). For each
workflow in ``workflows/``: it loads with no missing node types, no node flagged with errors and every
widget value among its choices/range; no two nodes overlap at the loaded layout; the frontend's own
``graphToPrompt`` gives exactly the API twin in ``workflows/api/``. One workflow is queued from the page
and must succeed; the pose-file upload button must put a file into the input folder and select it.
Screenshots go to ``test-artifacts/frontend/<workflow>.png`` (``DYNASCENE_ARTIFACTS`` moves them).
"""

from __future__ import annotations

import glob
import json
import os
import time

import pytest

from comfy_host.browser import CHROMIUM, frontend_page, graph_report, graph_to_prompt, load_workflow, overlaps, \
    screenshot_graph
from comfy_host.model_files import FILES, write_input_files
from comfy_host.server import REPO_ROOT, ComfyServer

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not COMFYUI_DIR, reason="COMFYUI_DIR is not set: no ComfyUI checkout to serve the frontend"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
WORKFLOWS = sorted(os.path.splitext(os.path.basename(p))[0]
                   for p in glob.glob(os.path.join(REPO_ROOT, "workflows", "*.json")))
ARTIFACTS = os.environ.get("DYNASCENE_ARTIFACTS") or os.path.join(REPO_ROOT, "test-artifacts")


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    """(server, page, page errors). Model files are empty placeholders: only their names fill the combos; the
    workflow queued here ("Design a camera move") loads no model."""
    pytest.importorskip("playwright.sync_api")
    with ComfyServer(COMFYUI_DIR, str(tmp_path_factory.mktemp("comfyui_frontend"))) as server:
        for folder, name in FILES.items():
            open(os.path.join(server.dirs["models"], folder, name), "wb").close()
        write_input_files(server.dirs["input"])
        with frontend_page(server.url) as (page, errors):
            yield server, page, errors


def _workflow(name: str, api: bool = False) -> dict:
    with open(os.path.join(REPO_ROOT, "workflows", *(("api",) if api else ()), f"{name}.json"), encoding="utf-8") as fh:
        return json.load(fh)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_loads_cleanly_without_overlaps(frontend, name):
    server, page, errors = frontend
    load_workflow(page, _workflow(name))
    os.makedirs(os.path.join(ARTIFACTS, "frontend"), exist_ok=True)
    screenshot_graph(page, os.path.join(ARTIFACTS, "frontend", f"{name}.png"))
    report = graph_report(page)
    assert not report["missing"], f"missing node types: {report['missing']}"
    assert not report["flagged"], f"nodes with errors: {report['flagged']}"
    assert not report["widgetErrors"], report["widgetErrors"]
    assert not overlaps(report["boxes"]), f"overlapping nodes: {overlaps(report['boxes'])}"
    # the frontend also sends values of its own widgets (LoadVideo's 'video-preview'), which the host ignores:
    # compare the inputs the node classes declare
    declared = {name: {**info["input"].get("required", {}), **info["input"].get("optional", {})}
                for name, info in server.get_json("/object_info", timeout=60).items()}
    prompt = {k: (v["class_type"], {i: x for i, x in v["inputs"].items() if i in declared[v["class_type"]]})
              for k, v in graph_to_prompt(page).items()}
    assert prompt == {k: (v["class_type"], v["inputs"]) for k, v in _workflow(name, api=True).items()}
    assert not errors, errors


def test_queue_from_the_page_runs_to_success(frontend):
    server, page, _ = frontend
    load_workflow(page, _workflow("Design a camera move"))
    before = set(server.get_json("/history"))
    page.evaluate("async () => { await window.app.queuePrompt(0); }")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = {k: v for k, v in server.get_json("/history").items() if k not in before}
        if new:
            (entry,) = new.values()
            assert entry["status"]["status_str"] == "success", entry["status"]
            assert any("pose_files" in out for out in entry["outputs"].values()), entry["outputs"]
            return
        time.sleep(0.2)
    pytest.fail(f"the queued workflow did not finish within 120 s\n{server.log()}")


def test_pose_file_upload_button_puts_the_file_in_the_input_folder(frontend, tmp_path):
    from dynascene_core.camera import make_preset

    server, page, errors = frontend
    pose = tmp_path / "uploaded_pose.txt"
    make_preset("pan_left", 4).save(str(pose))
    widgets = page.evaluate("""() => {
        const node = window.LiteGraph.createNode("DynaSceneLoadCameraPoseFile");
        window.app.graph.add(node);
        window.__poseNode = node;
        return node.widgets.map(w => w.name);
    }""")
    assert widgets == ["pose_file", "format", "choose pose file to upload"]
    page.set_input_files('input[type="file"][accept=".txt,text/plain"]', str(pose))
    page.wait_for_function("window.__poseNode.widgets[0].value === 'uploaded_pose.txt'", timeout=30_000)
    assert os.path.isfile(os.path.join(server.dirs["input"], "uploaded_pose.txt"))
    # the button is not saved: widgets_values stay what the Python side declares
    assert page.evaluate("() => window.__poseNode.serialize().widgets_values") == ["uploaded_pose.txt", "auto"]
    assert not errors, errors
