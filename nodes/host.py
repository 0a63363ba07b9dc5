"""The only place the pack touches ComfyUI's own modules (``folder_paths``, ``comfy.*``).

Everything is imported lazily, so ``import nodes`` and the node classes work without a host
(unit tests, scripts). Without a host, folders come from :data:`STANDALONE_DIRS`, progress is not
reported and interruption is never signalled.
"""

from __future__ import annotations

import importlib
import os

MODELS_SECTION_URL = "https://github.com/dynascene/comfyui-dynascene#model-files"
"""Where the README says which model file goes in which folder (named in every missing-file error)."""

PACK_MODEL_FOLDERS = ("dynascene", "rvm")
"""Model folders this pack adds under ``ComfyUI/models/``."""

REUSED_MODEL_FOLDERS = ("checkpoints", "animatediff_models", "vae", "clip_vision")
"""Host folders the pack reads; ``animatediff_models`` is registered here when AnimateDiff-Evolved is absent."""

STANDALONE_DIRS = {
    "input": os.path.join(os.getcwd(), "input"),
    "output": os.path.join(os.getcwd(), "output"),
    "models": os.path.join(os.getcwd(), "models"),
    "temp": os.path.join(os.getcwd(), "temp"),
}
"""Folders used when no ComfyUI is loaded; callers outside a host may point them elsewhere."""


def _host_module(name: str):
    """The host module ``name``, or None outside ComfyUI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def folder_paths():
    """ComfyUI's ``folder_paths`` module, or None outside ComfyUI."""
    return _host_module("folder_paths")


def in_comfyui() -> bool:
    return folder_paths() is not None


def register_model_folders() -> None:
    """Make the pack's model folders known to ComfyUI (idempotent; no-op without a host).

    Paths users set in ``extra_model_paths.yaml`` (loaded before custom nodes) stay first; the default
    ``models/<name>`` folder is appended, and a folder created by that file without extensions gets the
    usual weight-file extensions.
    """
    fp = folder_paths()
    if fp is None:
        return
    for name in PACK_MODEL_FOLDERS + REUSED_MODEL_FOLDERS:
        fp.add_model_folder_path(name, os.path.join(fp.models_dir, name))
        paths, extensions = fp.folder_names_and_paths[name]
        if not extensions:
            fp.folder_names_and_paths[name] = (paths, set(fp.supported_pt_extensions))


def model_folder_paths(folder: str) -> list[str]:
    """The directories searched for files of model folder ``folder``."""
    fp = folder_paths()
    if fp is None:
        return [os.path.join(STANDALONE_DIRS["models"], folder)]
    return list(fp.get_folder_paths(folder)) if folder in fp.folder_names_and_paths else []


def model_file_list(folder: str) -> list[str]:
    """File names offered in a model combo for ``folder`` (relative to the folder)."""
    fp = folder_paths()
    if fp is not None:
        return fp.get_filename_list(folder)
    names = []
    for root in model_folder_paths(folder):
        if os.path.isdir(root):
            for dirpath, _dirs, files in os.walk(root):
                names += [os.path.relpath(os.path.join(dirpath, f), root) for f in files]
    return sorted(names)


def resolve_model_file(folder: str, filename: str, what: str) -> str:
    """Full path of ``filename`` in model folder ``folder``.

    ``what`` says which file is expected and where to get it (e.g. "the Robust Video Matting weights
    rvm_mobilenetv3.pth from github.com/PeterL1n/RobustVideoMatting/releases"); it is part of the error.
    Raises FileNotFoundError naming every directory searched, ValueError for names that leave the folder.
    Symlinks inside model folders are followed (as the host does: shared model folders are often linked in).
    """
    if not filename or os.path.isabs(filename) or ".." in filename.replace("\\", "/").split("/"):
        raise ValueError(f"Model file name '{filename}' must be a file inside the '{folder}' model folder "
                         f"(no absolute path, no '..'): pick it from the list")
    fp = folder_paths()
    path = fp.get_full_path(folder, filename) if fp is not None else None
    if fp is None:
        candidates = [os.path.join(root, filename) for root in model_folder_paths(folder)]
        path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        searched = ", ".join(model_folder_paths(folder)) or "(no folder registered)"
        raise FileNotFoundError(
            f"Model file '{filename}' not found in the '{folder}' model folder (searched: {searched}). "
            f"Expected {what}. Put it in one of those folders (or add a '{folder}:' entry to "
            f"extra_model_paths.yaml), then refresh the node. See {MODELS_SECTION_URL}")
    return path


def input_files(suffixes: tuple[str, ...]) -> list[str]:
    """Files in the input folder (sub-folders included, as ``sub/name``) whose names end in ``suffixes``."""
    root = input_directory()
    names = []
    for dirpath, _dirs, files in os.walk(root):
        names += [os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")
                  for f in files if f.lower().endswith(suffixes)]
    return sorted(names)


def resolve_input_file(name: str, what: str) -> str:
    """Full path of ``name``, a file chosen from the input folder.

    A network client chooses ``name``, so names that leave the input folder are refused with a ValueError:
    absolute paths, ``..`` and symlinks pointing outside (the check is on the resolved path).
    """
    root = os.path.realpath(input_directory())
    path = os.path.realpath(os.path.join(root, name))
    if not name or os.path.isabs(name) or os.path.commonpath((root, path)) != root:
        raise ValueError(f"{what} '{name}' is not inside ComfyUI's input folder {root}: choose a file from that "
                         f"folder (or upload one with the node's button)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} '{name}' not found in ComfyUI's input folder {root}")
    return path


def input_directory() -> str:
    fp = folder_paths()
    return fp.get_input_directory() if fp is not None else STANDALONE_DIRS["input"]


def output_directory() -> str:
    fp = folder_paths()
    return fp.get_output_directory() if fp is not None else STANDALONE_DIRS["output"]


def temp_directory() -> str:
    fp = folder_paths()
    return fp.get_temp_directory() if fp is not None else STANDALONE_DIRS["temp"]


def new_file_path(prefix: str, extension: str, kind: str = "output") -> tuple[str, dict]:
    """A fresh ``<prefix>_<counter:05>_.<extension>`` path in the output (or temp) folder, and its UI entry.

    ``prefix`` may contain sub-folders (``dynascene/camera``); the counter continues after existing
    files, as with ComfyUI's SaveImage. The UI entry is ``{"filename", "subfolder", "type": kind}``.
    """
    base = os.path.abspath(output_directory() if kind == "output" else temp_directory())
    fp = folder_paths()
    if fp is not None:
        folder, name, counter, subfolder, _ = fp.get_save_image_path(prefix, base)
    else:
        subfolder, name = os.path.split(os.path.normpath(prefix))
        folder = os.path.abspath(os.path.join(base, subfolder))
        if os.path.commonpath((base, folder)) != base:
            raise ValueError(f"filename_prefix '{prefix}' points outside the {kind} folder {base}")
        os.makedirs(folder, exist_ok=True)
        counter = 1
        while os.path.exists(os.path.join(folder, f"{name}_{counter:05}_.{extension}")):
            counter += 1
    filename = f"{name}_{counter:05}_.{extension}"
    return os.path.join(folder, filename), {"filename": filename, "subfolder": subfolder, "type": kind}


def check_interrupted() -> None:
    """Raise the host's interruption exception if the user pressed Cancel (no-op without a host)."""
    model_management = _host_module("comfy.model_management")
    if model_management is not None:
        model_management.throw_exception_if_processing_interrupted()


def progress_bar(total: int):
    """A ``comfy.utils.ProgressBar`` for the running node, or None without a host."""
    utils = _host_module("comfy.utils")
    return utils.ProgressBar(total) if utils is not None else None


def sd15_latent_previewer():
    """The host's previewer for SD1.5 latents honouring the user's preview setting, or None."""
    latent_preview = _host_module("latent_preview")
    model_management = _host_module("comfy.model_management")
    latent_formats = _host_module("comfy.latent_formats")
    if latent_preview is None or model_management is None or latent_formats is None:
        return None
    return latent_preview.get_previewer(model_management.get_torch_device(), latent_formats.SD15())


# -- devices and memory ----------------------------------------------------------------------------

def get_torch_device():
    """The device models run on: the host's choice (GPU unless ``--cpu``), the CPU without a host."""
    import torch

    model_management = _host_module("comfy.model_management")
    return model_management.get_torch_device() if model_management is not None else torch.device("cpu")


def unet_offload_device():
    """Where idle models wait: the host's offload device (CPU unless ``--highvram``/``--gpu-only``)."""
    import torch

    model_management = _host_module("comfy.model_management")
    return model_management.unet_offload_device() if model_management is not None else torch.device("cpu")


def inference_dtype(device, num_parameters: int):
    """fp16 or bf16 on a GPU as the host decides (honouring ``--fp32-unet`` etc.), fp32 on a CPU."""
    import torch

    model_management = _host_module("comfy.model_management")
    if model_management is None:
        return torch.float32
    return model_management.unet_dtype(device=device, model_params=num_parameters,
                                       supported_dtypes=[torch.float16, torch.bfloat16, torch.float32])


def model_patcher(module):
    """Wrap ``module`` in a ``comfy.model_patcher.ModelPatcher`` so the host's memory management moves it
    to the GPU when loaded and offloads it when other models need the room; None without a host."""
    patcher_module = _host_module("comfy.model_patcher")
    if patcher_module is None:
        return None
    return patcher_module.ModelPatcher(module, load_device=get_torch_device(), offload_device=unet_offload_device())


def load_models_gpu(patchers: list, memory_required: int = 0, what: str = "the models") -> None:
    """Move the wrapped models to their load device through the host's memory management.

    ``memory_required`` (bytes) is the working memory the caller will need beyond the weights; the host
    offloads other models until weights plus that fit. The pack's networks use plain torch layers, which
    cannot run partly offloaded: when the host can load them only partly, this raises MemoryError with the
    sizes (instead of failing later with a device mismatch). No-op without a host.
    """
    model_management = _host_module("comfy.model_management")
    patchers = [p for p in patchers if p is not None]
    if model_management is None or not patchers:
        return
    model_management.load_models_gpu(patchers, memory_required=memory_required)
    for patcher in patchers:
        if patcher.model_size() > 0 and getattr(patcher.model, "model_lowvram", False):
            gib = 1024 ** 3
            raise MemoryError(
                f"not enough memory on {patcher.load_device} for {what}: {patcher.model_size() / gib:.2f} GiB of "
                f"weights plus about {memory_required / gib:.2f} GiB working memory, and only "
                f"{patcher.loaded_size() / gib:.2f} GiB of weights fit after offloading other models. Lower the "
                f"resolution, the context length or the chunk size, or close other workflows' models")
        # parameter-free modules (buffers such as position tables) are moved only by a full load
        patcher.model.to(patcher.load_device)


def is_loaded(patcher) -> bool:
    """Whether the host currently holds ``patcher``'s model on its load device (True without a host)."""
    model_management = _host_module("comfy.model_management")
    if model_management is None or patcher is None:
        return True
    return any(loaded is patcher for loaded in model_management.loaded_models())
