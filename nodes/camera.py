"""Camera nodes: pose files, presets, combining, resampling, estimation from video, preview.

Thin wrappers over :mod:`dynascene_core.camera`; every trajectory operation lives there.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from PIL import Image

from dynascene_core.camera import (DEFAULT_FOV_DEG, EASINGS, PRESET_NAMES, CameraTrajectory, camera_condition,
                                   estimate_trajectory, make_preset, plot_trajectory, plucker_to_rgb)
from dynascene_core.camera.estimate import ESTIMATION_SIDE, METHODS, SMALLEST_SIDE
from dynascene_core.camera.quality import LONG_KLT_FRAMES
from dynascene_core.camera.rolling_shutter import DIRECTIONS, MAX_READOUT

from . import host
from .adapters import ProgressReporter, frames_to_image, image_to_frames, mask_to_core
from .types import CAMERA, CATEGORY

CAMERA_CATEGORY = f"{CATEGORY}/Camera"
POSE_FILE_SUFFIXES = (".txt",)
POSE_FORMATS = ("auto", "realestate10k", "tum")
MAX_FRAMES = 4096
NO_PRESET = "none"


class LoadCameraPoseFile:
    DESCRIPTION = ("Load a camera trajectory from a RealEstate10K (CameraCtrl) or TUM (DPVO/DROID-SLAM) pose "
                   "file in ComfyUI's input folder (upload one with the button).")
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (CAMERA, "INT")
    RETURN_NAMES = ("camera", "frames")
    OUTPUT_TOOLTIPS = ("The camera trajectory.", "Number of frames in the file.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pose_file": (host.input_files(POSE_FILE_SUFFIXES), {
                    "tooltip": "A .txt pose file in ComfyUI's input folder; 'choose pose file to upload' puts "
                               "one there."}),
            },
            "optional": {
                "format": (list(POSE_FORMATS), {"default": "auto", "tooltip": "File format; 'auto' detects it "
                                                                              "from the number of fields."}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, pose_file, format="auto"):
        with open(host.resolve_input_file(pose_file, "Pose file"), "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest() + format

    def load(self, pose_file, format="auto"):
        camera = CameraTrajectory.load(host.resolve_input_file(pose_file, "Pose file"),
                                       format=None if format == "auto" else format)
        return (camera, len(camera))


class CameraPreset:
    DESCRIPTION = ("A designed camera move (pan, tilt, dolly, truck, zoom, roll, orbit), optionally two at "
                   "once, starting at the reference camera.")
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (CAMERA,)
    RETURN_NAMES = ("camera",)
    OUTPUT_TOOLTIPS = ("The designed camera trajectory.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "preset": (list(PRESET_NAMES), {"default": "dolly_in", "tooltip": "The camera move."}),
                "frames": ("INT", {"default": 16, "min": 1, "max": MAX_FRAMES,
                                   "tooltip": "Number of frames (match the video's frame count)."}),
                "speed": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 20.0, "step": 0.05,
                                    "tooltip": "Motion per frame relative to the preset's standard rate."}),
                "easing": (list(EASINGS), {"default": "linear", "tooltip": "Timing of the move; the total "
                                                                           "motion stays the same."}),
            },
            "optional": {
                "with_preset": ([NO_PRESET] + list(PRESET_NAMES), {
                    "default": NO_PRESET, "tooltip": "A second move performed at the same time "
                                                     "(e.g. dolly_in with pan_right)."}),
            },
        }

    def make(self, preset, frames, speed, easing, with_preset=NO_PRESET):
        names = [preset] if with_preset == NO_PRESET else [preset, with_preset]
        return (make_preset(names, frames, speed, easing),)


class ConcatenateCameras:
    DESCRIPTION = ("Play one camera move after another. With 'continue_motion' the second move starts where "
                   "the first ends (no jump, the shared frame is not repeated).")
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "concatenate"
    RETURN_TYPES = (CAMERA, "INT")
    RETURN_NAMES = ("camera", "frames")
    OUTPUT_TOOLTIPS = ("The joined trajectory.", "Its number of frames.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "first": (CAMERA, {"tooltip": "Plays first."}),
                "second": (CAMERA, {"tooltip": "Plays after 'first'."}),
                "continue_motion": ("BOOLEAN", {"default": True, "tooltip": "Re-anchor 'second' at the last "
                                                                            "pose of 'first' (off: stack the poses as they are)."}),
            },
        }

    def concatenate(self, first, second, continue_motion):
        camera = CameraTrajectory.concat([first, second], chain=continue_motion)
        return (camera, len(camera))


class ResampleCamera:
    DESCRIPTION = ("Fit a camera trajectory to a frame count: 'resample' stretches or compresses the whole move "
                   "(smooth interpolation), 'trim' keeps frames start..start+N. Connect 'match_images' to use "
                   "that batch's frame count.")
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "fit"
    RETURN_TYPES = (CAMERA, "INT")
    RETURN_NAMES = ("camera", "frames")
    OUTPUT_TOOLTIPS = ("The fitted trajectory.", "Its number of frames.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "camera": (CAMERA, {}),
                "mode": (["resample", "trim"], {"default": "resample"}),
                "frames": ("INT", {"default": 16, "min": 1, "max": MAX_FRAMES,
                                   "tooltip": "Target frame count (ignored when 'match_images' is connected)."}),
                "start": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES,
                                  "tooltip": "First frame kept by 'trim'."}),
            },
            "optional": {
                "match_images": ("IMAGE", {"tooltip": "Use the number of frames in this image batch."}),
            },
        }

    def fit(self, camera, mode, frames, start, match_images=None):
        target = frames if match_images is None else int(match_images.shape[0])
        if mode == "resample":
            fitted = camera.resample(target)
        else:
            if start + target > len(camera):
                raise ValueError(f"Cannot trim {target} frames starting at frame {start}: the camera has only "
                                 f"{len(camera)} frames (use mode 'resample' to stretch it)")
            fitted = camera.trim(start, start + target)
        return (fitted, len(fitted))


class ScaleCameraSpeed:
    DESCRIPTION = "Make a camera move faster or slower over the same frames (rotation, travel and zoom scaled)."
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "scale"
    RETURN_TYPES = (CAMERA,)
    RETURN_NAMES = ("camera",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "camera": (CAMERA, {}),
                "factor": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 20.0, "step": 0.05,
                                     "tooltip": "2 = twice the motion per frame, 0.5 = half, 0 = static."}),
            },
        }

    def scale(self, camera, factor):
        return (camera.scale_speed(factor),)


class EstimateCameraFromVideo:
    DESCRIPTION = ("Estimate how the camera moved in a video from its background (the human is masked out). "
                   "Poses are relative to the first frame. Connect the matting mask for best results.")
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "estimate"
    RETURN_TYPES = (CAMERA, "STRING")
    RETURN_NAMES = ("camera", "report")
    OUTPUT_TOOLTIPS = ("The estimated trajectory, one pose per frame.",
                       "Quality report: verdict (reliable / uncertain / unreliable) and why, motion type, "
                       "field of view, reprojection error, tracks, inliers, unreliable frames.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The video frames."}),
                "fov_degrees": ("FLOAT", {"default": DEFAULT_FOV_DEG, "min": 10.0, "max": 150.0, "step": 0.5,
                                          "tooltip": "Field of view across the longer image side "
                                                     "(phone main cameras: about 65)."}),
                "search_fov": ("BOOLEAN", {"default": False, "tooltip": "Estimate the field of view from the "
                                                                        "video instead (see the report)."}),
            },
            "optional": {
                "human_mask": ("MASK", {"tooltip": "1 on the human (matting output); those pixels are not "
                                                   "tracked."}),
                "method": (list(METHODS), {"default": "fast", "tooltip": "fast: KLT tracks (on clips of more than "
                                                                         f"{LONG_KLT_FRAMES} frames, where they drift, "
                                                                         "SIFT matches 4 frames apart), and a clip "
                                                                         "they leave in doubt tried again on the "
                                                                         "other. accurate: SIFT features matched "
                                                                         "up to 12 frames apart, every track "
                                                                         "adjusted, three starting focals; a "
                                                                         "little over half the speed."}),
                "rolling_shutter": (["find", "off", "fixed"], {
                    "default": "find", "tooltip": "Phone and most video cameras read the picture line by line, "
                                                  "which bends it while the camera turns. find: the readout time "
                                                  "is found from the video (see the report); off: a global "
                                                  "shutter; fixed: readout_frames."}),
                "readout_frames": ("FLOAT", {"default": 0.5, "min": 0.0, "max": MAX_READOUT, "step": 0.05,
                                             "tooltip": "With rolling_shutter = fixed: the readout time in frame "
                                                        "intervals (a 30 ms readout at 30 frames/s is 0.9)."}),
                "readout_direction": (["find", *DIRECTIONS], {
                    "default": "find", "tooltip": "Where the readout goes in the picture: down (rows top to "
                                                  "bottom), up (camera upside down), right or left (columns: "
                                                  "portrait video from a turned phone)."}),
                "longer_side": ("INT", {"default": ESTIMATION_SIDE, "min": 0, "max": 8192, "step": 8,
                                        "tooltip": "The frames are reduced to this longer side (pixels) for the "
                                                   f"estimate (at least {SMALLEST_SIDE}); 0 keeps their size. "
                                                   "512 is the size the estimator was tuned and timed at. Larger is slower and not reliably "
                                                   "better (phone clips at 960 px: fast 0.27 instead of 0.33 deg "
                                                   "median at 0.6 of the speed, accurate's p90 1.24 instead of "
                                                   "0.60 deg); for precision choose the accurate method."}),
            },
        }

    def estimate(self, images, fov_degrees, search_fov, human_mask=None, method="fast", rolling_shutter="find",
                 readout_frames=0.5, readout_direction="find", longer_side=ESTIMATION_SIDE):
        frames = image_to_frames(images, "images")
        masks = None if human_mask is None else mask_to_core(human_mask, len(frames), "human_mask")
        if masks is not None and masks.shape[-2:] != frames.shape[-2:]:
            raise ValueError(f"human_mask is {tuple(masks.shape[-2:])} (H, W) but the images are "
                             f"{tuple(frames.shape[-2:])}")
        progress = ProgressReporter(len(frames), preview=False)
        progress(0)
        readout = {"find": None, "off": 0.0, "fixed": readout_frames}[rolling_shutter]
        direction = None if readout_direction == "find" else readout_direction
        camera, stats = estimate_trajectory(frames, masks, None if search_fov else fov_degrees, method=method,
                                            readout=readout, readout_direction=direction,
                                            longer_side=longer_side or None, progress=progress)
        report = stats.quality.summary()
        return {"ui": {"text": [report]}, "result": (camera, report)}


class PreviewCamera:
    DESCRIPTION = ("Draw a camera trajectory (top and side views, first camera green, last red) and show it in "
                   "the node; the picture is also an IMAGE output.")
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "preview"
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "camera": (CAMERA, {}),
                "width": ("INT", {"default": 512, "min": 64, "max": 2048, "step": 8}),
                "height": ("INT", {"default": 256, "min": 48, "max": 2048, "step": 8}),
            },
        }

    def preview(self, camera, width, height):
        picture = plot_trajectory(camera, (width, height))
        path, entry = host.new_file_path("dynascene_camera_preview", "png", kind="temp")
        Image.fromarray(picture).save(path, compress_level=1)
        image = torch.from_numpy(picture.astype(np.float32) / 255.0)[None]
        return {"ui": {"images": [entry]}, "result": (image,)}


class PluckerEmbeddingPreview:
    DESCRIPTION = ("Show the Plücker ray embedding the sampler feeds the camera encoder, one image per frame: "
                   "ray directions (left) and moments o×d (right, grey = reference camera).")
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "embed"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "camera": (CAMERA, {}),
                "width": ("INT", {"default": 256, "min": 8, "max": 2048, "step": 8}),
                "height": ("INT", {"default": 144, "min": 8, "max": 2048, "step": 8}),
                "reference_frame": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES - 1,
                                            "tooltip": "Camera the rays are expressed relative to (the scene "
                                                       "image's view; the sampler uses frame 0)."}),
            },
        }

    def embed(self, camera, width, height, reference_frame):
        if reference_frame >= len(camera):
            raise ValueError(f"reference_frame {reference_frame} is outside the camera's {len(camera)} frames")
        embedding = camera_condition(camera, height, width, reference_frame)(range(len(camera)))
        return (frames_to_image(plucker_to_rgb(embedding)),)


class SaveCameraPoseFile:
    DESCRIPTION = ("Save a camera trajectory as a RealEstate10K pose file (readable by CameraCtrl and "
                   "AnimateDiff-Evolved) or TUM file in ComfyUI's output folder.")
    CATEGORY = CAMERA_CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Full path of the written file.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "camera": (CAMERA, {}),
                "filename_prefix": ("STRING", {"default": "dynascene/camera",
                                               "tooltip": "File name start, may include sub-folders of the "
                                                          "output folder."}),
                "format": (["realestate10k", "tum"], {"default": "realestate10k"}),
            },
        }

    def save(self, camera, filename_prefix, format):
        path, entry = host.new_file_path(filename_prefix, "txt", kind="output")
        camera.save(path, format=format)
        return {"ui": {"pose_files": [entry]}, "result": (path,)}


NODE_CLASS_MAPPINGS = {
    "DynaSceneLoadCameraPoseFile": LoadCameraPoseFile,
    "DynaSceneCameraPreset": CameraPreset,
    "DynaSceneConcatenateCameras": ConcatenateCameras,
    "DynaSceneResampleCamera": ResampleCamera,
    "DynaSceneScaleCameraSpeed": ScaleCameraSpeed,
    "DynaSceneEstimateCameraFromVideo": EstimateCameraFromVideo,
    "DynaScenePreviewCamera": PreviewCamera,
    "DynaScenePluckerEmbeddingPreview": PluckerEmbeddingPreview,
    "DynaSceneSaveCameraPoseFile": SaveCameraPoseFile,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "DynaSceneLoadCameraPoseFile": "Load Camera Pose File (DynaScene)",
    "DynaSceneCameraPreset": "Camera Preset (DynaScene)",
    "DynaSceneConcatenateCameras": "Concatenate Cameras (DynaScene)",
    "DynaSceneResampleCamera": "Resample / Trim Camera (DynaScene)",
    "DynaSceneScaleCameraSpeed": "Scale Camera Speed (DynaScene)",
    "DynaSceneEstimateCameraFromVideo": "Estimate Camera From Video (DynaScene)",
    "DynaScenePreviewCamera": "Camera Trajectory Preview (DynaScene)",
    "DynaScenePluckerEmbeddingPreview": "Plücker Embedding Preview (DynaScene)",
    "DynaSceneSaveCameraPoseFile": "Save Camera Pose File (DynaScene)",
}
