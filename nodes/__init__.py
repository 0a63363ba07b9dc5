"""ComfyUI nodes of the DynaScene pack, grouped by feature. Each module exports NODE_CLASSES."""

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
