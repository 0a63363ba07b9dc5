"""Names users type are one list each, shared by the command lines and the ComfyUI nodes, and the
spellings users try (``ease-in``) are accepted as the canonical name (``ease_in``)."""

import argparse

import pytest
import torch

from dynascene_core.camera import EASINGS, PRESET_NAMES, make_preset
from dynascene_core.camera.__main__ import build_parser as camera_parser
from dynascene_core.generate import build_parser as generate_parser
from nodes import camera as camera_nodes


def _action(parser: argparse.ArgumentParser, dest: str, subcommand: str | None = None) -> argparse.Action:
    if subcommand is not None:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subparsers.choices[subcommand]
    return next(a for a in parser._actions if a.dest == dest)


def test_easing_choices_are_one_list():
    node_inputs = camera_nodes.CameraPreset.INPUT_TYPES()["required"]
    assert list(node_inputs["easing"][0]) == list(EASINGS)
    assert list(_action(camera_parser(), "easing", "preset").choices) == list(EASINGS)
    assert list(_action(generate_parser(), "easing").choices) == list(EASINGS)
    assert EASINGS == ("linear", "ease_in", "ease_out", "ease_in_out")  # canonical: underscores, like presets


def test_preset_names_are_one_list():
    node_inputs = camera_nodes.CameraPreset.INPUT_TYPES()
    assert list(node_inputs["required"]["preset"][0]) == list(PRESET_NAMES)
    assert list(node_inputs["optional"]["with_preset"][0])[1:] == list(PRESET_NAMES)


@pytest.mark.parametrize("typed,canonical", [("ease-in", "ease_in"), ("ease-out", "ease_out"),
                                             ("ease-in-out", "ease_in_out"), ("Ease In Out", "ease_in_out"),
                                             ("ease_in", "ease_in"), ("linear", "linear")])
def test_easing_aliases_are_the_same_easing(typed, canonical):
    assert camera_parser().parse_args(["preset", "pan_left", "--easing", typed, "--out", "x"]).easing == canonical
    assert generate_parser().parse_args(["--demo", "--easing", typed]).easing == canonical
    torch.testing.assert_close(make_preset("dolly_in", 9, easing=typed).c2w,
                               make_preset("dolly_in", 9, easing=canonical).c2w)


def test_unknown_easing_is_refused_naming_it(capsys):
    with pytest.raises(SystemExit) as exc:
        camera_parser().parse_args(["preset", "pan_left", "--easing", "wobbly", "--out", "x"])
    assert exc.value.code == 2 and "wobbly" in capsys.readouterr().err
    with pytest.raises(ValueError, match="wobbly"):
        make_preset("pan_left", 5, easing="wobbly")


def test_cli_flags_match_node_inputs():
    """The sampler node's inputs are the generate flags with dashes; the short forms stay as aliases."""
    from nodes.sampler import DynaSceneSampler

    required = DynaSceneSampler.INPUT_TYPES()["required"]
    flags = {option for action in generate_parser()._actions for option in action.option_strings}
    for node_input in ("steps", "guidance", "seed", "eta", "foreground_reinjection", "context_length",
                       "context_overlap", "feather", "clip_vision"):
        assert node_input in required, node_input
        assert "--" + node_input.replace("_", "-") in flags, node_input
    assert {"--window", "--overlap", "--reinject", "--clip"} <= flags
