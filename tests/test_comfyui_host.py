"""The pack inside a real ComfyUI server: registration, model folders, shipped workflows, validation.

Needs ``COMFYUI_DIR`` (a ComfyUI checkout with its requirements installed; README "ComfyUI" says how);
skipped otherwise. ``COMFYUI_PYTHON`` picks the interpreter that runs the server (default: this one).
``DYNASCENE_REFRESH_CORE_SIGNATURES=1`` rewrites ``tests/comfy_host/core_signatures.json`` from the host.

Model files are generated into the server's temporary model folders before any workflow runs
(:func:`comfy_host.model_files.write_model_files`): a tiny DynaScene file (``tiny768`` config: tiny
networks taking the real 768-d CLIP embedding), a random RVM MobileNetV3 file, and for the host's own
loaders a random full-size SD VAE and CLIP ViT-L/14 vision model (fp16; ComfyUI detects them by their
key layout). Input videos are synthetic demo clips at 64x64. Test-time overrides of the shipped
workflows, to keep CPU runs short: sampler steps -> 3; long_video.json ships context 24/overlap 4 for
48+ frames and runs here on 20 frames with context 8/overlap 2 (3 windows).
"""

from __future__ import annotations

import contextlib
import copy
import glob
import json
import os

import pytest

from comfy_host import workflow_graph
from comfy_host.model_files import write_input_files, write_model_files
from comfy_host.server import PACK_LINK_NAME, REPO_ROOT, ComfyServer

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not COMFYUI_DIR, reason="COMFYUI_DIR is not set: no ComfyUI checkout to test the pack in "
                                               "(see README, section ComfyUI)"),
]

API_WORKFLOWS = sorted(glob.glob(os.path.join(REPO_ROOT, "workflows", "api", "*.json")))
CORE_NODES_TRACKED = ("SaveImage", "PreviewImage", "LoadImage", "LoadVideo", "GetVideoComponents", "CreateVideo",
                      "SaveVideo", "VAELoader", "CLIPVisionLoader", "ImageCompositeMasked", "ImageScale")
"""Core nodes whose input signatures are kept in core_signatures.json (those our workflows may use)."""


TEST_OVERRIDES = {
    "DynaSceneSampler": {"steps": 3},
}
WORKFLOW_OVERRIDES = {
    "long_video.json": {"DynaSceneSampler": {"context_length": 8, "context_overlap": 2}},
}
"""Test-time changes to the shipped API graphs (by node class), to keep the CPU runs short."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ComfyServer(COMFYUI_DIR, str(tmp_path_factory.mktemp("comfyui")),
                     python=os.environ.get("COMFYUI_PYTHON")) as running:
        write_model_files(running.dirs["models"])
        write_input_files(running.dirs["input"])
        yield running


def load_api_workflow(path: str) -> dict:
    """A shipped API graph with the test-time overrides applied."""
    with open(path, encoding="utf-8") as handle:
        prompt = json.load(handle)
    for overrides in (TEST_OVERRIDES, WORKFLOW_OVERRIDES.get(os.path.basename(path), {})):
        for node in prompt.values():
            node["inputs"].update(overrides.get(node["class_type"], {}))
    return prompt


@pytest.fixture(scope="module")
def object_info(server):
    return server.get_json("/object_info", timeout=60)


@contextlib.contextmanager
def log_on_failure(server):
    """Print the server log when the block fails (pytest shows it with the failure)."""
    try:
        yield
    except BaseException:
        print(f"----- ComfyUI server log ({server.log_path}) -----\n{server.log()}")
        raise


def pack_nodes():
    import nodes
    return nodes.NODE_CLASS_MAPPINGS, nodes.NODE_DISPLAY_NAME_MAPPINGS


def test_every_pack_node_registers_without_import_errors(server, object_info):
    classes, display_names = pack_nodes()
    with log_on_failure(server):
        log = server.log()
        pack_lines = [line for line in log.splitlines() if PACK_LINK_NAME in line]
        assert not [line for line in pack_lines if "IMPORT FAILED" in line or "Cannot import" in line]
        assert any("seconds" in line for line in pack_lines), "the pack is missing from the import-times list"
        missing = sorted(set(classes) - set(object_info))
        assert not missing, f"not registered in the host: {missing}"
        for name in classes:
            assert object_info[name]["display_name"] == display_names[name]
            assert object_info[name]["category"].startswith("DynaScene/")
            assert object_info[name]["python_module"].endswith(PACK_LINK_NAME)


def test_pack_signatures_seen_by_host_match_the_classes(server, object_info):
    classes, _ = pack_nodes()
    with log_on_failure(server):
        for name, signature in workflow_graph.pack_signatures(classes).items():
            assert workflow_graph.signature(object_info[name]) == signature, name


def test_core_signature_snapshot_matches_host(server, object_info):
    live = {name: workflow_graph.signature(object_info[name]) for name in CORE_NODES_TRACKED if name in object_info}
    if os.environ.get("DYNASCENE_REFRESH_CORE_SIGNATURES") == "1":
        with open(workflow_graph.CORE_SIGNATURES_PATH, "w", encoding="utf-8") as handle:
            json.dump(live, handle, indent=1, sort_keys=True)
            handle.write("\n")
    assert workflow_graph.load_core_signatures() == live


def test_model_folders_are_registered(server):
    with log_on_failure(server):
        folders = server.get_json("/models")
        for name in ("dynascene", "rvm", "checkpoints", "animatediff_models", "vae", "clip_vision"):
            assert name in folders, name
        open(os.path.join(server.dirs["models"], "dynascene", "probe.safetensors"), "wb").close()
        open(os.path.join(server.dirs["models"], "rvm", "probe.pth"), "wb").close()
        assert "probe.safetensors" in server.get_json("/models/dynascene")
        assert "probe.pth" in server.get_json("/models/rvm")


def _run(server, prompt: dict) -> dict:
    status, body = server.post_prompt(prompt)
    assert status == 200, f"prompt rejected ({status}): {json.dumps(body, indent=1)}"
    return server.wait_for_history(body["prompt_id"], timeout=180)


@pytest.mark.parametrize("path", API_WORKFLOWS, ids=os.path.basename)
def test_shipped_workflow_runs(server, path):
    prompt = load_api_workflow(path)
    with log_on_failure(server):
        entry = _run(server, prompt)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)
        output_nodes = [key for key, node in prompt.items()
                        if getattr(pack_nodes()[0].get(node["class_type"]), "OUTPUT_NODE", False)
                        or node["class_type"] in ("SaveImage", "PreviewImage", "SaveVideo")]
        assert output_nodes and all(key in entry["outputs"] for key in output_nodes), entry["outputs"].keys()
        for key, outputs in entry["outputs"].items():
            for item in outputs.get("images", []) + outputs.get("pose_files", []):
                folder = server.dirs[item["type"]]
                assert os.path.getsize(os.path.join(folder, item["subfolder"], item["filename"])) > 0, item
        for key, node in prompt.items():
            if node["class_type"] == "SaveVideo":
                _check_saved_video(server, entry["outputs"][key], prompt)


def _check_saved_video(server, outputs, prompt):
    """SaveVideo wrote an mp4 with as many frames as the source video, at its size."""
    from dynascene_core.video import read_video

    (item,) = outputs["images"]
    assert outputs.get("animated") == [True]
    path = os.path.join(server.dirs[item["type"]], item["subfolder"], item["filename"])
    frames = read_video(path).frames
    source = next(node["inputs"]["file"] for node in prompt.values() if node["class_type"] == "LoadVideo")
    want = read_video(os.path.join(server.dirs["input"], source)).frames
    assert frames.shape == want.shape, (frames.shape, want.shape)


def test_camera_design_writes_a_loadable_pose_file(server):
    from dynascene_core.camera import CameraTrajectory

    with open(os.path.join(REPO_ROOT, "workflows", "api", "camera_design.json"), encoding="utf-8") as handle:
        prompt = json.load(handle)
    prompt["4"]["inputs"]["frames"] = 20
    with log_on_failure(server):
        entry = _run(server, prompt)
        item = entry["outputs"]["7"]["pose_files"][0]
        path = os.path.join(server.dirs["output"], item["subfolder"], item["filename"])
        assert len(CameraTrajectory.load(path)) == 20
        # that file read back through the Load node of the host, by combo choice
        os.replace(path, os.path.join(server.dirs["input"], "designed.txt"))
        load_prompt = {
            "1": {"class_type": "DynaSceneLoadCameraPoseFile", "inputs": {"pose_file": "designed.txt"}},
            "2": {"class_type": "DynaSceneSaveCameraPoseFile",
                  "inputs": {"camera": ["1", 0], "filename_prefix": "reloaded", "format": "tum"}},
        }
        entry = _run(server, load_prompt)
        assert entry["status"]["status_str"] == "success", entry["status"]
        item = entry["outputs"]["2"]["pose_files"][0]
        assert len(CameraTrajectory.load(os.path.join(server.dirs["output"], item["filename"]))) == 20


@pytest.mark.parametrize("node_id,name,value", [
    ("1", "frames", 0),            # below the declared minimum
    ("1", "preset", "spin_wildly"),  # not a combo choice
    ("3", "first", ["99", 0]),     # link to a node that does not exist
])
def test_invalid_input_is_a_validation_error(server, node_id, name, value):
    with open(os.path.join(REPO_ROOT, "workflows", "api", "camera_design.json"), encoding="utf-8") as handle:
        prompt = json.load(handle)
    bad = copy.deepcopy(prompt)
    bad[node_id]["inputs"][name] = value
    with log_on_failure(server):
        status, body = server.post_prompt(bad)
        assert status == 400, body
        assert body["error"]["type"] in ("prompt_outputs_failed_validation", "invalid_prompt"), body
        assert server.process.poll() is None, "the server died"
        assert server.get_json("/system_stats")["system"]["comfyui_version"]


def test_missing_and_broken_model_files_give_clear_errors(server):
    prompt = load_api_workflow(os.path.join(REPO_ROOT, "workflows", "api", "video_to_scene.json"))
    loader = next(key for key, node in prompt.items() if node["class_type"] == "DynaSceneLoadModel")
    with log_on_failure(server):
        missing = copy.deepcopy(prompt)
        missing[loader]["inputs"]["model_name"] = "not_there.safetensors"
        status, body = server.post_prompt(missing)
        # the host still queues the outputs that do not depend on the loader (the camera preview)
        assert status in (200, 400) and loader in body["node_errors"], body
        (error,) = body["node_errors"][loader]["errors"]
        assert error["type"] == "value_not_in_list" and "not_there.safetensors" in error["details"]
        assert "21" in body["node_errors"][loader]["dependent_outputs"]  # SaveVideo does not run
        if status == 200:
            entry = server.wait_for_history(body["prompt_id"])
            assert "21" not in entry["outputs"]

        broken = os.path.join(server.dirs["models"], "dynascene", "broken.safetensors")
        with open(broken, "wb") as handle:
            handle.write(b"not a weight file")
        bad = copy.deepcopy(prompt)
        bad[loader]["inputs"]["model_name"] = "broken.safetensors"
        entry = _run(server, bad)
        os.remove(broken)
        assert entry["status"]["status_str"] == "error"
        errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
        assert errors and errors[0]["node_id"] == loader
        assert "broken.safetensors" in errors[0]["exception_message"]


def test_node_error_reaches_history_with_its_message(server):
    prompt = {
        "1": {"class_type": "DynaSceneCameraPreset",
              "inputs": {"preset": "pan_left", "frames": 8, "speed": 1.0, "easing": "linear"}},
        "2": {"class_type": "DynaSceneResampleCamera",
              "inputs": {"camera": ["1", 0], "mode": "trim", "frames": 8, "start": 4}},
        "3": {"class_type": "DynaSceneSaveCameraPoseFile",
              "inputs": {"camera": ["2", 0], "filename_prefix": "never", "format": "realestate10k"}},
    }
    with log_on_failure(server):
        entry = _run(server, prompt)
        assert entry["status"]["status_str"] == "error"
        errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
        assert errors and errors[0]["node_id"] == "2"
        assert "the camera has only 8 frames" in errors[0]["exception_message"]
