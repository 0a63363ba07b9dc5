"""Every registered node is declared consistently; shipped workflows agree with their API twins (no host)."""

from __future__ import annotations

import copy
import glob
import inspect
import json
import os

import pytest

import nodes
from comfy_host import workflow_graph
from comfy_host.server import REPO_ROOT

WIDGET_TYPES = workflow_graph.WIDGET_TYPES
UI_WORKFLOWS = sorted(glob.glob(os.path.join(REPO_ROOT, "workflows", "*.json")))
NODES = sorted(nodes.NODE_CLASS_MAPPINGS.items())


def test_pack_registers_nodes_with_unique_display_names():
    assert len(NODES) >= 8
    assert set(nodes.NODE_DISPLAY_NAME_MAPPINGS) == set(nodes.NODE_CLASS_MAPPINGS)
    names = list(nodes.NODE_DISPLAY_NAME_MAPPINGS.values())
    assert len(set(names)) == len(names)
    assert all(name.endswith("(DynaScene)") for name in names)


@pytest.mark.parametrize("name,cls", NODES, ids=[n for n, _ in NODES])
def test_node_declaration_is_consistent(name, cls):
    assert name.startswith("DynaScene")
    assert cls.CATEGORY == "DynaScene" or cls.CATEGORY.startswith("DynaScene/")
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 20
    declared = cls.INPUT_TYPES()
    assert set(declared) <= {"required", "optional", "hidden"}
    input_names = [n for section in ("required", "optional") for n in declared.get(section, {})]
    assert len(set(input_names)) == len(input_names)
    for section in ("required", "optional"):
        for input_name, spec in declared.get(section, {}).items():
            kind = spec[0]
            assert isinstance(kind, (str, list)), (input_name, spec)  # a file combo may be empty
            options = spec[1] if len(spec) > 1 else {}
            if isinstance(kind, list) and "default" in options:
                assert options["default"] in kind, input_name
            if kind in ("INT", "FLOAT") and "default" in options:
                assert options.get("min", -1e30) <= options["default"] <= options.get("max", 1e30), input_name

    function = getattr(cls, cls.FUNCTION)
    parameters = inspect.signature(function).parameters
    params = [p for p in parameters if p != "self"]
    assert set(declared.get("required", {})) <= set(params), "every required input is a parameter"
    for p in params:
        assert p in input_names or p in declared.get("hidden", {}), f"parameter {p} is not a declared input"
    for optional in declared.get("optional", {}):
        assert parameters[optional].default is not inspect.Parameter.empty, f"optional {optional} needs a default"

    assert isinstance(cls.RETURN_TYPES, tuple)
    for attribute in ("RETURN_NAMES", "OUTPUT_TOOLTIPS"):
        if hasattr(cls, attribute):
            assert len(getattr(cls, attribute)) == len(cls.RETURN_TYPES), attribute
    assert len(set(getattr(cls, "RETURN_NAMES", ()))) == len(getattr(cls, "RETURN_NAMES", ()))
    assert cls.RETURN_TYPES or getattr(cls, "OUTPUT_NODE", False), "a node without outputs must be an output node"
    for validator in ("VALIDATE_INPUTS", "IS_CHANGED"):
        if hasattr(cls, validator):
            for p in inspect.signature(getattr(cls, validator)).parameters:
                assert p in input_names, f"{validator} takes undeclared input {p}"


# -- workflows -----------------------------------------------------------------------------------

def _signatures():
    return {**workflow_graph.load_core_signatures(), **workflow_graph.pack_signatures(nodes.NODE_CLASS_MAPPINGS)}


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_every_ui_workflow_has_an_api_twin_and_back():
    ui = {os.path.basename(p) for p in UI_WORKFLOWS}
    api = {os.path.basename(p) for p in glob.glob(os.path.join(REPO_ROOT, "workflows", "api", "*.json"))}
    assert ui and ui == api


@pytest.mark.parametrize("path", UI_WORKFLOWS, ids=os.path.basename)
def test_ui_workflow_agrees_with_api_twin(path):
    ui = _load(path)
    twin = _load(os.path.join(os.path.dirname(path), "api", os.path.basename(path)))
    assert ui["version"] == 0.4
    assert ui["last_node_id"] == max(n["id"] for n in ui["nodes"])
    assert ui["last_link_id"] == max(link[0] for link in ui["links"])
    signatures = _signatures()
    assert workflow_graph.ui_to_api(ui, signatures) == workflow_graph.strip_meta(twin)
    used = {node["class_type"] for node in twin.values()}
    assert used <= set(signatures), "workflows use only this pack's nodes and tracked core nodes"
    for node in ui["nodes"]:  # every declared output link exists in the links table
        for slot, output in enumerate(node.get("outputs", [])):
            for link_id in output.get("links") or []:
                link = next(link for link in ui["links"] if link[0] == link_id)
                assert link[1:3] == [node["id"], slot]


def test_converter_rejects_inconsistent_graphs():
    ui = _load(os.path.join(REPO_ROOT, "workflows", "Design a camera move.json"))
    signatures = _signatures()
    extra_value = copy.deepcopy(ui)
    extra_value["nodes"][0]["widgets_values"].append(3)
    with pytest.raises(workflow_graph.WorkflowError, match="widgets_values"):
        workflow_graph.ui_to_api(extra_value, signatures)
    wrong_type = copy.deepcopy(ui)
    wrong_type["links"][0][5] = "IMAGE"
    with pytest.raises(workflow_graph.WorkflowError, match="says IMAGE"):
        workflow_graph.ui_to_api(wrong_type, signatures)
    unknown = copy.deepcopy(ui)
    unknown["nodes"][0]["type"] = "SomeOtherPackNode"
    with pytest.raises(workflow_graph.WorkflowError, match="unknown node type"):
        workflow_graph.ui_to_api(unknown, signatures)


def test_converter_skips_seed_control_and_upload_values():
    signatures = {
        "Sampler": workflow_graph.signature({"input": {"required": {
            "seed": ["INT", {"default": 0}], "steps": ["INT", {}], "image": ["IMAGE", {}]}}, "output": ["IMAGE"]}),
        "Loader": workflow_graph.signature({"input": {"required": {
            "file": ["COMBO", {"options": ["a.mp4"], "video_upload": True}]}}, "output": ["IMAGE"]}),
    }
    ui = {"nodes": [
        {"id": 1, "type": "Loader", "widgets_values": ["a.mp4", "image"], "outputs": [], "inputs": []},
        {"id": 2, "type": "Sampler", "widgets_values": [7, "fixed", 20],
         "inputs": [{"name": "image", "type": "IMAGE", "link": 1}]},
    ], "links": [[1, 1, 0, 2, 0, "IMAGE"]]}
    assert workflow_graph.ui_to_api(ui, signatures) == {
        "1": {"class_type": "Loader", "inputs": {"file": "a.mp4"}},
        "2": {"class_type": "Sampler", "inputs": {"seed": 7, "steps": 20, "image": ["1", 0]}},
    }
