"""UI-format workflow -> API-format prompt, for checking the shipped workflows against their API twins.

ComfyUI has no server-side converter (the frontend's ``graphToPrompt`` does it), so this is a small,
documented re-implementation for the plain graphs we ship. Rules (those of the ComfyUI frontend):

* A node's inputs are walked in declaration order (``input_order``: required, then optional).
  Widget inputs (INT, FLOAT, STRING, BOOLEAN, combos; not ``forceInput``) each take the next entry of
  ``widgets_values``; an INT with ``control_after_generate`` (default on for ``seed``/``noise_seed``)
  and a combo with an ``*_upload`` flag take one more (the control / upload-button value), which is
  not sent to the server.
* A linked input becomes ``[str(origin_node_id), origin_slot]``, whether a socket or a widget turned
  into an input (its widget value is still stored, and skipped); an unlinked socket is left out.
* ``Note``/``MarkdownNote`` nodes are not executed. Anything else unusual (muted/bypassed nodes,
  groups/subgraphs, dict-style ``widgets_values``) is rejected with an error instead of guessed.

Node input signatures come from the node classes (this pack) or from ``core_signatures.json``
(ComfyUI core nodes, checked against a live host by ``tests/test_comfyui_host.py``, rewritten only on request).
"""

from __future__ import annotations

import json
import os

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = ("seed", "noise_seed")
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
CORE_SIGNATURES_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core_signatures.json")


class WorkflowError(ValueError):
    """A workflow cannot be converted or is inconsistent; the message names the node or link."""


def signature(object_info: dict) -> dict:
    """``{"inputs": [[name, type, widget_values]], "outputs": [types]}`` of one ``/object_info`` entry.

    ``widget_values`` is how many ``widgets_values`` entries the input occupies (0 for sockets).
    """
    inputs = []
    for section in ("required", "optional"):
        specs = object_info["input"].get(section, {})
        for name in object_info.get("input_order", {}).get(section, list(specs)):
            spec = specs[name]
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if kind not in WIDGET_TYPES or options.get("forceInput"):
                inputs.append([name, kind, 0])
                continue
            control = kind == "INT" and options.get("control_after_generate", name in SEED_NAMES)
            upload = kind == "COMBO" and any(options.get(flag) for flag in UPLOAD_FLAGS)
            inputs.append([name, kind, 2 if control or upload else 1])
    return {"inputs": inputs, "outputs": list(object_info.get("output", []))}


def class_object_info(node_class) -> dict:
    """The ``/object_info``-shaped description of a V1 node class (what the host would publish)."""
    declared = node_class.INPUT_TYPES()
    return {
        "input": {k: declared[k] for k in ("required", "optional") if k in declared},
        "input_order": {k: list(declared[k]) for k in ("required", "optional") if k in declared},
        "output": list(node_class.RETURN_TYPES),
    }


def load_core_signatures() -> dict:
    with open(CORE_SIGNATURES_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def pack_signatures(node_class_mappings: dict) -> dict:
    return {name: signature(class_object_info(cls)) for name, cls in node_class_mappings.items()}


def ui_to_api(workflow: dict, signatures: dict) -> dict:
    """Convert a UI-format workflow to the API prompt ``{id: {"class_type", "inputs"}}`` (see module doc)."""
    if workflow.get("definitions", {}).get("subgraphs"):
        raise WorkflowError("subgraphs are not supported by this converter")
    links = {}
    for link in workflow.get("links", []):
        link_id, origin, origin_slot, target, target_slot, link_type = link[:6]
        links[link_id] = (origin, origin_slot, target, target_slot, link_type)
    nodes = {node["id"]: node for node in workflow["nodes"]}
    prompt = {}
    for node in workflow["nodes"]:
        node_type, node_id = node["type"], node["id"]
        if node_type in NOTE_TYPES:
            continue
        where = f"node {node_id} ({node_type})"
        if node.get("mode", 0) != 0:
            raise WorkflowError(f"{where}: muted/bypassed nodes are not supported (mode {node.get('mode')})")
        if node_type not in signatures:
            raise WorkflowError(f"{where}: unknown node type; add its signature to {CORE_SIGNATURES_PATH}")
        values = node.get("widgets_values", [])
        if not isinstance(values, list):
            raise WorkflowError(f"{where}: dict-style widgets_values are not supported")
        linked = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is None:
                continue
            if slot["link"] not in links:
                raise WorkflowError(f"{where}: input '{slot['name']}' uses link {slot['link']}, absent from 'links'")
            origin, origin_slot, target, _, link_type = links[slot["link"]]
            if target != node_id:
                raise WorkflowError(f"{where}: link {slot['link']} targets node {target}")
            origin_outputs = signatures[nodes[origin]["type"]]["outputs"]
            if origin_slot >= len(origin_outputs) or origin_outputs[origin_slot] != link_type:
                raise WorkflowError(f"{where}: link {slot['link']} says {link_type} but node {origin} output "
                                    f"{origin_slot} is {origin_outputs[origin_slot:origin_slot + 1]}")
            linked[slot["name"]] = [str(origin), origin_slot]
        inputs, used = {}, 0
        for name, kind, widget_values in signatures[node_type]["inputs"]:
            if widget_values:
                if used + widget_values > len(values):
                    raise WorkflowError(f"{where}: too few widgets_values ({len(values)}) for input '{name}'")
                value = values[used]
                used += widget_values
            if name in linked:
                inputs[name] = linked.pop(name)
            elif widget_values:
                inputs[name] = value
        if used != len(values):
            raise WorkflowError(f"{where}: {len(values)} widgets_values but the inputs take {used}")
        if linked:
            raise WorkflowError(f"{where}: links into unknown inputs {sorted(linked)}")
        prompt[str(node_id)] = {"class_type": node_type, "inputs": inputs}
    return prompt


def strip_meta(prompt: dict) -> dict:
    """An API prompt without the cosmetic ``_meta`` (titles), for comparison."""
    return {key: {k: v for k, v in node.items() if k != "_meta"} for key, node in prompt.items()}
