"""Names shared by the pack's nodes: the category root and the custom socket types."""

CATEGORY = "DynaScene"
"""Root of every node's category (``DynaScene/Camera``, ...)."""

CAMERA = "DYNASCENE_CAMERA"
"""A :class:`dynascene_core.camera.CameraTrajectory` (immutable by convention: nodes return new ones)."""
