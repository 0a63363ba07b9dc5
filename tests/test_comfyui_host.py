"""The pack inside a real ComfyUI server: registration, model folders, shipped workflows, validation, the LATENT
convention, Cancel, file-path safety, templates.

Needs ``COMFYUI_DIR`` (a ComfyUI checkout with its requirements installed; README "Testing inside a real
ComfyUI" says how); skipped otherwise (``DYNASCENE_REQUIRE_HOST=1``, set by CI, makes that skip a failure).
``COMFYUI_PYTHON`` picks the interpreter that runs the server (default: this one).
``DYNASCENE_REFRESH_CORE_SIGNATURES=1`` rewrites ``tests/comfy_host/core_signatures.json`` from the host (and
fails once, so a person reviews and commits it).

Model files are generated into the server's temporary model folders before any workflow runs
(:func:`comfy_host.model_files.write_model_files`): a tiny DynaScene file (``tiny768`` config: tiny
networks taking the real 768-d CLIP embedding), a random RVM MobileNetV3 file, and for the host's own
loaders a random full-size SD VAE and CLIP ViT-L/14 vision model (fp16; ComfyUI detects them by their
key layout). Input videos are synthetic demo clips at 64x64. Test-time overrides of the shipped
workflows, to keep CPU runs short: sampler steps -> 3; the long-video workflow ships context 24/overlap 4
for 48+ frames and runs here on 20 frames with context 8/overlap 2 (3 windows).
"""

from __future__ import annotations

import contextlib
import copy
import glob
import json
import os
import urllib.parse
import urllib.request

import numpy as np
import pytest

from comfy_host import workflow_graph
from comfy_host.model_files import FILES, INTERRUPT_VIDEO, VIDEO_FRAMES, VIDEO_SIZE, write_input_files, write_model_files
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
    "Long video in context windows.json": {"DynaSceneSampler": {"context_length": 8, "context_overlap": 2}},
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
    """The snapshot never refreshes itself: a difference fails until a person rewrites it on purpose
    (``DYNASCENE_REFRESH_CORE_SIGNATURES=1``: the file is rewritten and the test still fails once)."""
    live = {name: workflow_graph.signature(object_info[name]) for name in CORE_NODES_TRACKED if name in object_info}
    if os.environ.get("DYNASCENE_REFRESH_CORE_SIGNATURES") == "1" and workflow_graph.load_core_signatures() != live:
        with open(workflow_graph.CORE_SIGNATURES_PATH, "w", encoding="utf-8") as handle:
            json.dump(live, handle, indent=1, sort_keys=True)
            handle.write("\n")
        pytest.fail(f"rewrote {workflow_graph.CORE_SIGNATURES_PATH} from the host: review and commit it")
    assert workflow_graph.load_core_signatures() == live, (
        "the host's core node signatures differ from tests/comfy_host/core_signatures.json; after checking that "
        "the shipped workflows still load, rewrite it with DYNASCENE_REFRESH_CORE_SIGNATURES=1 (README, Testing "
        "inside a real ComfyUI)")


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
    return server.wait_for_history(body["prompt_id"], timeout=600)  # generous: shared CI machines are slow


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

    with open(os.path.join(REPO_ROOT, "workflows", "api", "Design a camera move.json"), encoding="utf-8") as handle:
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
    with open(os.path.join(REPO_ROOT, "workflows", "api", "Design a camera move.json"), encoding="utf-8") as handle:
        prompt = json.load(handle)
    bad = copy.deepcopy(prompt)
    bad[node_id]["inputs"][name] = value
    with log_on_failure(server):
        status, body = server.post_prompt(bad)
        assert status == 400, body
        assert body["error"]["type"] in ("prompt_outputs_failed_validation", "invalid_prompt"), body
        if body["error"]["type"] == "prompt_outputs_failed_validation":
            assert node_id in body["node_errors"], body  # the node is named
        else:
            assert "99" in body["error"]["message"] or "99" in json.dumps(body), body
        assert server.process.poll() is None, "the server died"
        assert server.get_json("/system_stats")["system"]["comfyui_version"]


def test_missing_and_broken_model_files_give_clear_errors(server):
    prompt = load_api_workflow(os.path.join(REPO_ROOT, "workflows", "api", "Video to a new scene.json"))
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


def _saved_images(server, outputs) -> np.ndarray:
    """The frames a SaveImage node wrote, ``(F, H, W, 3)`` float in [0, 1], in order."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(os.path.join(server.dirs[i["type"]], i["subfolder"], i["filename"])),
                                np.float32) / 255 for i in outputs["images"]])


def test_host_vae_decode_of_the_sampler_latent_equals_the_background(server):
    """The LATENT output follows the host's SD1.5 convention: its own VAE Decode gives every frame."""
    prompt = load_api_workflow(os.path.join(REPO_ROOT, "workflows", "api", "Video to a new scene.json"))
    sampler = next(key for key, node in prompt.items() if node["class_type"] == "DynaSceneSampler")
    vae = next(key for key, node in prompt.items() if node["class_type"] == "VAELoader")
    prompt["90"] = {"class_type": "VAEDecode", "inputs": {"samples": [sampler, 2], "vae": [vae, 0]}}
    prompt["91"] = {"class_type": "SaveImage", "inputs": {"images": ["90", 0], "filename_prefix": "decoded"}}
    prompt["92"] = {"class_type": "SaveImage", "inputs": {"images": [sampler, 0], "filename_prefix": "background"}}
    with log_on_failure(server):
        entry = _run(server, prompt)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)
        decoded, background = _saved_images(server, entry["outputs"]["91"]), _saved_images(server, entry["outputs"]["92"])
    frames = VIDEO_FRAMES["dynascene_example.mp4"]
    assert decoded.shape == background.shape == (frames, *VIDEO_SIZE, 3)
    assert np.abs(decoded - background).max() <= 2 / 255  # 8-bit PNGs of the same decode


INTERRUPT_WINDOW = (4, 1)  # the sampler's context length and overlap in the interrupt test


def _interrupt_prompts() -> dict:
    video = {"1": {"class_type": "LoadVideo", "inputs": {"file": INTERRUPT_VIDEO}},
             "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}}}
    matting = {**video,
               "3": {"class_type": "DynaSceneLoadMattingModel", "inputs": {"model_name": FILES["rvm"]}},
               "4": {"class_type": "DynaSceneMatteVideo", "inputs": {"matting_model": ["3", 0], "images": ["2", 0],
                                                                      "chunk": 1, "downsample_ratio": 0.0}},
               "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}}
    estimation = {**video,
                  "4": {"class_type": "DynaSceneEstimateCameraFromVideo",
                        "inputs": {"images": ["2", 0], "fov_degrees": 60.0, "search_fov": True}},
                  "5": {"class_type": "DynaScenePreviewCamera", "inputs": {"camera": ["4", 0], "width": 256,
                                                                           "height": 128}}}
    sampling = load_api_workflow(os.path.join(REPO_ROOT, "workflows", "api", "Video to a new scene.json"))
    sampler = next(key for key, node in sampling.items() if node["class_type"] == "DynaSceneSampler")
    # long enough to be running when Interrupt comes; the sampler checks for it before every U-Net call (each
    # context window of each step): 4-frame windows make many short calls per step
    sampling[sampler]["inputs"].update(steps=500, seed=1, context_length=INTERRUPT_WINDOW[0],
                                       context_overlap=INTERRUPT_WINDOW[1])
    return {"matting": (matting, "4"), "camera_estimation": (estimation, "4"), "sampling": (sampling, sampler)}


def _checks_per_progress_unit(work: str) -> int:
    """How often the node checks for Interrupt per unit its progress bar counts: every chunk / frame for
    matting and camera estimation, every context window of a step for the sampler."""
    if work != "sampling":
        return 1
    from dynascene_core.sampling.windows import context_windows

    return len(context_windows(VIDEO_FRAMES[INTERRUPT_VIDEO], *INTERRUPT_WINDOW))


@pytest.mark.parametrize("work", ["matting", "camera_estimation", "sampling"])
def test_interrupt_stops_the_work_promptly(server, work):
    """Interrupt ends the node within a second, or, where the machine is so loaded that its work is slow
    (CI's two cores are shared with the other test worker and its ComfyUI), within the time of four of its
    Interrupt checks or half a unit of its progress bar, whichever is longer, timed from its own progress events.
    Without Interrupt the sampler would run 500 steps. (Under such load Interrupt once took 1.55 s to end the
    sampler while one of its windows took 0.16 s; that the sampler checks before every window is tested in
    test_sampling_pipeline.)"""
    prompt, node_id = _interrupt_prompts()[work]
    with log_on_failure(server):
        result = server.interrupt_at_progress(prompt, node_id)
        assert result["progress"]["value"] < result["progress"]["max"], result  # reported while working
        assert result["interrupted"]["node_id"] == node_id, result
        seconds_per_check = result["unit_seconds"] / _checks_per_progress_unit(work)
        assert result["seconds"] < max(1.0, 4 * seconds_per_check, 0.5 * result["unit_seconds"]), result
        assert server.get_json("/system_stats")["system"]["comfyui_version"]


def test_file_inputs_cannot_leave_the_host_folders(server):
    outside = os.path.join(server.work_dir, "secret_poses.txt")  # next to, not inside, the input folder
    from dynascene_core.camera import make_preset

    make_preset("pan_left", 3).save(outside)
    link = os.path.join(server.dirs["input"], "linked_out.txt")
    if not os.path.lexists(link):
        os.symlink(outside, link)

    def load_pose(name):
        return {"1": {"class_type": "DynaSceneLoadCameraPoseFile", "inputs": {"pose_file": name}},
                "2": {"class_type": "DynaSceneSaveCameraPoseFile",
                      "inputs": {"camera": ["1", 0], "filename_prefix": "copy", "format": "tum"}}}

    with log_on_failure(server):
        for name in ("../secret_poses.txt", outside, "sub/../../secret_poses.txt"):
            status, body = server.post_prompt(load_pose(name))
            assert status == 400 and "1" in body["node_errors"], (name, body)
            assert body["node_errors"]["1"]["errors"][0]["type"] == "value_not_in_list", body
        # a symlink in the input folder is listed, but the resolved file is outside: an execution error
        entry = _run(server, load_pose("linked_out.txt"))
        errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
        assert errors and errors[0]["node_id"] == "1", entry["status"]
        assert "not inside ComfyUI's input folder" in errors[0]["exception_message"]
        # saving outside the output folder is refused by the host's own path check
        for prefix in ("../escape", os.path.join(server.work_dir, "escape")):
            prompt = {"1": {"class_type": "DynaSceneCameraPreset",
                            "inputs": {"preset": "pan_left", "frames": 4, "speed": 1.0, "easing": "linear"}},
                      "2": {"class_type": "DynaSceneSaveCameraPoseFile",
                            "inputs": {"camera": ["1", 0], "filename_prefix": prefix, "format": "tum"}}}
            entry = _run(server, prompt)
            errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
            assert errors and errors[0]["node_id"] == "2" and "outside the output folder" in errors[0]["exception_message"]
        assert not glob.glob(os.path.join(server.work_dir, "escape*"))


def test_workflows_are_listed_as_templates_with_thumbnails(server):
    names = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(REPO_ROOT, "workflows",
                                                                                           "*.json")))
    with log_on_failure(server):
        assert sorted(server.get_json("/workflow_templates")[PACK_LINK_NAME]) == names
        for name in names:
            base = f"{server.url}/api/workflow_templates/{PACK_LINK_NAME}/{urllib.parse.quote(name)}"
            with urllib.request.urlopen(base + ".json", timeout=30) as answer:
                assert json.loads(answer.read())["nodes"]
            with urllib.request.urlopen(base + ".jpg", timeout=30) as answer:
                assert answer.headers["Content-Type"] == "image/jpeg" and len(answer.read()) > 1000


def _node_id(prompt: dict, class_type: str) -> str:
    (key,) = [key for key, node in prompt.items() if node["class_type"] == class_type]
    return key


def _execution_error(entry: dict) -> dict:
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert entry["status"]["status_str"] == "error" and len(errors) == 1, json.dumps(entry["status"], indent=1)
    return errors[0]


def test_wrong_sizes_and_counts_fail_before_matting_runs(server):
    """The sampler checks the frames, then models/scene/camera, before it asks for the matte: a wrong-size video
    or a pose file of another length fails at the sampler with one line, and matting, mask refinement and camera
    estimation never ran (the host lists the nodes that completed before the error, and those it had cached)."""
    from dynascene_core.camera import demo_clip, make_preset
    from dynascene_core.video import write_video

    # videos no other test loads, so no node downstream of them is in the host's cache
    odd_size, twelve = "dynascene_odd_size.mp4", "dynascene_twelve_frames.mp4"
    write_video(os.path.join(server.dirs["input"], odd_size), demo_clip(6, 68, 64, seed=5).frames, fps=12)
    write_video(os.path.join(server.dirs["input"], twelve), demo_clip(12, *VIDEO_SIZE, seed=6).frames, fps=12)
    make_preset("pan_left", 9).save(os.path.join(server.dirs["input"], "nine_frames.txt"))

    scene = load_api_workflow(os.path.join(REPO_ROOT, "workflows", "api", "Video to a new scene.json"))
    scene[_node_id(scene, "LoadVideo")]["inputs"]["file"] = odd_size
    # a preview of the matte: the host then prefers matting to any node not one step from an output
    scene["91"] = {"class_type": "PreviewImage", "inputs": {"images": [_node_id(scene, "DynaSceneMatteVideo"), 0]}}
    designed = load_api_workflow(os.path.join(REPO_ROOT, "workflows", "api", "Designed camera move behind a video.json"))
    designed[_node_id(designed, "LoadVideo")]["inputs"]["file"] = twelve
    designed["90"] = {"class_type": "DynaSceneLoadCameraPoseFile", "inputs": {"pose_file": "nine_frames.txt"}}
    designed[_node_id(designed, "DynaSceneSampler")]["inputs"].update(camera=["90", 0], fit_camera_to_frames=False)
    cases = [(scene, "images are 64x68 pixels; DynaScene needs width and height divisible by 8"),
             (designed, "the camera has 9 frames but the video has 12")]
    with log_on_failure(server):
        for prompt, message in cases:
            entry = _run(server, prompt)
            error = _execution_error(entry)
            assert error["node_id"] == _node_id(prompt, "DynaSceneSampler"), error
            assert message in error["exception_message"] and len(error["exception_message"].strip().splitlines()) == 1
            executed = set(error["executed"])
            (cached,) = [m[1]["nodes"] for m in entry["status"]["messages"] if m[0] == "execution_cached"]
            assert _node_id(prompt, "GetVideoComponents") in executed, executed
            for costly in ("DynaSceneMatteVideo", "DynaSceneEstimateCameraFromVideo", "DynaSceneRefineMask"):
                for key in [key for key, node in prompt.items() if node["class_type"] == costly]:
                    assert key not in executed and key not in cached, (costly, executed, cached)
        assert "90" in executed  # the pose file was read (and checked) before the matte was asked for
