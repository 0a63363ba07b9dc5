"""Names shared by the pack's nodes: the category root and the custom socket types."""

CATEGORY = "DynaScene"
"""Root of every node's category (``DynaScene/Camera``, ...)."""

CAMERA = "DYNASCENE_CAMERA"
"""A :class:`dynascene_core.camera.CameraTrajectory` (immutable by convention: nodes return new ones)."""

MODEL = "DYNASCENE_MODEL"
"""A :class:`nodes.models.DynaSceneModel`: denoiser, ReferenceNet and camera encoder under the host's memory management."""

MATTING_MODEL = "DYNASCENE_RVM"
"""A :class:`nodes.matting.MattingModel`: the Robust Video Matting network and its host ModelPatcher."""

COMPOSITE_SETTINGS = "DYNASCENE_COMPOSITE_SETTINGS"
"""A :class:`dynascene_core.compositing.CompositeSettings` (light wrap, harmonization, contact shadow)."""
