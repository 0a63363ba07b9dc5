"""ComfyUI nodes of the DynaScene pack, one module per feature.

Each feature module exports ``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS``; they are merged
here (a node name defined twice is an error). Importing this package needs no ComfyUI: host modules are
reached only through :mod:`.host`, which also registers the pack's model folders when a host is present.
"""

from . import camera, compositing, host, matting, models, sampler

FEATURE_MODULES = (camera, models, matting, sampler, compositing)

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

for _module in FEATURE_MODULES:
    for _name, _cls in _module.NODE_CLASS_MAPPINGS.items():
        if _name in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"DynaScene node '{_name}' is defined in two feature modules")
        NODE_CLASS_MAPPINGS[_name] = _cls
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

host.register_model_folders()
