"""DynaScene core library: cameras, models, sampling, matting, data and checkpoints.

Nothing here imports ComfyUI; the ComfyUI nodes in ``nodes/`` and the training code in
``training/`` are thin layers over this package. Submodules are imported on demand so that a
user of one part (e.g. cameras) does not pay for loading the others.
"""

__version__ = "0.1.0"
