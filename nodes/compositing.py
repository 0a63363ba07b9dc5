"""The Composite Settings node: light wrap, harmonization and contact shadow for the Sampler's and the
Composite node's output. Without it those nodes use :class:`dynascene_core.compositing.CompositeSettings`'
defaults (matte-aware edges, light wrap 0.2, harmonization 0.7, no shadow).
"""

from __future__ import annotations

from dataclasses import replace

from dynascene_core.compositing import CompositeSettings

from .types import CATEGORY, COMPOSITE_SETTINGS


def settings_with_feather(settings: CompositeSettings | None, feather: int) -> CompositeSettings:
    """The node's ``composite_settings`` input (or the defaults) with its own edge-softness widget."""
    return replace(settings or CompositeSettings(), feather=feather)


class CompositeSettingsNode:
    DESCRIPTION = ("How the human is put over the new background, for the Background Sampler's composite output "
                   "and the Composite node: light wrap of the background into the person's edge, harmonization "
                   "of the person's exposure/colour with the new background, and an optional contact shadow. "
                   "Unconnected, those nodes use these defaults.")
    CATEGORY = f"{CATEGORY}/Generate"
    FUNCTION = "settings"
    RETURN_TYPES = (COMPOSITE_SETTINGS,)
    RETURN_NAMES = ("composite_settings",)

    @classmethod
    def INPUT_TYPES(cls):
        d = CompositeSettings()
        return {
            "required": {
                "light_wrap": ("FLOAT", {"default": d.light_wrap, "min": 0.0, "max": 1.0, "step": 0.05,
                                         "tooltip": "How much of the blurred new background spills over the "
                                                    "person's edge (0 = off)."}),
                "harmonize": ("FLOAT", {"default": d.harmonize, "min": 0.0, "max": 1.0, "step": 0.05,
                                        "tooltip": "Adapt the person's exposure and colour balance to the new "
                                                   "background by this fraction of the change of their "
                                                   "surroundings (0 = off). Smoothed over time."}),
                "harmonize_radius": ("INT", {"default": d.harmonize_radius, "min": 0, "max": 64,
                                             "tooltip": "Average the correction over this many frames on each "
                                                        "side (no flicker)."}),
                "shadow": ("FLOAT", {"default": d.shadow, "min": 0.0, "max": 1.0, "step": 0.05,
                                     "tooltip": "Contact shadow strength: the matte cast on the ground from the "
                                                "feet (0 = off)."}),
                "shadow_angle": ("FLOAT", {"default": d.shadow_angle, "min": -80.0, "max": 80.0, "step": 5.0,
                                           "tooltip": "Shadow direction in degrees from straight down "
                                                      "(positive = to the right)."}),
                "shadow_length": ("FLOAT", {"default": d.shadow_length, "min": 0.05, "max": 2.0, "step": 0.05,
                                            "tooltip": "Shadow length as a fraction of the person's height."}),
            },
        }

    def settings(self, light_wrap, harmonize, harmonize_radius, shadow, shadow_angle, shadow_length):
        result = CompositeSettings(light_wrap=light_wrap, harmonize=harmonize, harmonize_radius=harmonize_radius,
                                   shadow=shadow, shadow_angle=shadow_angle, shadow_length=shadow_length)
        result.validate()
        return (result,)


NODE_CLASS_MAPPINGS = {"DynaSceneCompositeSettings": CompositeSettingsNode}
NODE_DISPLAY_NAME_MAPPINGS = {"DynaSceneCompositeSettings": "Composite Settings (DynaScene)"}
