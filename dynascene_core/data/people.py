"""Person detection for the "exactly one person" filter: detectors and the per-clip verdict.

Two detectors, both returning person boxes ``(k, 5)`` = ``x0, y0, x1, y1, score`` in pixels:

* ``hog``: OpenCV's HOG + linear SVM people detector (Dalal & Triggs), shipped inside OpenCV, no
  weight file. OpenCV 4.x has it in the main package; OpenCV 5 keeps it only in the contrib build, so
  without it it is refused with a message saying what to do. Trained on upright, whole-body
  pedestrians at least 64×128 px: too weak to be the default (README, "Person detector").
* ``torchvision``: a COCO detector of torchvision (Faster R-CNN, RetinaNet, FCOS, SSD/SSDlite;
  BSD-3-Clause code) built with ``weights=None`` and filled from a weight file the user gives;
  nothing is downloaded. Boxes of COCO class 1 (person) are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

COCO_PERSON = 1


class HogPersonDetector:
    """OpenCV's default HOG people detector; scores are the SVM margins (about 0 to 3)."""

    def __init__(self):
        if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
            raise RuntimeError(
                f"person.detector: hog needs OpenCV's HOG people detector, which OpenCV 5 moved out of the main "
                f"package (installed OpenCV {cv2.__version__}); set person.detector: torchvision with a "
                "person.weights file, or install opencv-python-headless<5 (or opencv-contrib-python-headless "
                "in its place)")
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        out = []
        for frame in frames:
            grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
            rects, weights = self.hog.detectMultiScale(grey, winStride=(8, 8), padding=(8, 8), scale=1.05)
            boxes = np.zeros((len(rects), 5), np.float32)
            if len(rects):
                rects = np.asarray(rects, np.float32)
                boxes[:, :2], boxes[:, 2:4] = rects[:, :2], rects[:, :2] + rects[:, 2:4]
                boxes[:, 4] = np.ravel(weights)
            out.append(_non_max_suppression(boxes, 0.5))
        return out


class TorchvisionPersonDetector:
    """A torchvision COCO detector from a local weight file (``architecture`` = builder name)."""

    def __init__(self, weights: str | None, architecture: str, device: str = "cpu", short_side: int = 480):
        import torch
        from torchvision.models import detection

        from ..checkpoints.io import CheckpointError, read_weights

        if not weights:
            raise ValueError("person.detector: torchvision needs person.weights, a local weight file of "
                             f"torchvision's {architecture} (COCO); nothing is downloaded")
        builder = getattr(detection, architecture, None)
        if builder is None or not callable(builder) or architecture.startswith("_"):
            raise ValueError(f"person.architecture: {architecture!r} is not a torchvision detection builder "
                             "(e.g. fasterrcnn_resnet50_fpn_v2, retinanet_resnet50_fpn_v2, ssdlite320_mobilenet_v3_large)")
        # R-CNN/RetinaNet/FCOS resize inputs to an 800 px short side by default; run them at the size the
        # frames were sampled at instead (about 2.8x fewer pixels). SSD models have a fixed input size.
        size = {} if architecture.startswith("ssd") else {"min_size": short_side, "max_size": 2 * short_side}
        model = builder(weights=None, weights_backbone=None, num_classes=91, **size)
        tensors = read_weights(weights).tensors
        expected = model.state_dict()
        missing = [k for k in expected if k not in tensors]
        unexpected = [k for k in tensors if k not in expected]
        wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            raise CheckpointError(weights, f"does not match torchvision's {architecture} (COCO, 91 classes)"
                                  + (f"; wrong shapes: {wrong[:3]}" if wrong else ""),
                                  expected=f"a state dict of torchvision.models.detection.{architecture}",
                                  missing=missing, unexpected=unexpected)
        model.load_state_dict(tensors)
        self.model = model.to(device).eval()
        self.device = device
        self._torch = torch

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        images = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div(255).to(self.device)
                  for f in frames]
        with torch.no_grad():
            results = self.model(images)
        out = []
        for result in results:
            keep = result["labels"] == COCO_PERSON
            boxes = torch.cat([result["boxes"][keep], result["scores"][keep, None]], 1)
            out.append(boxes.float().cpu().numpy())
        return out


def make_person_detector(settings: dict, device: str = "cpu"):
    """The detector named by the ``person`` settings; errors before any video is read."""
    if settings["detector"] == "hog":
        return HogPersonDetector()
    weights = settings["weights"]
    if weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"person.weights: {weights}: no such file")
    return TorchvisionPersonDetector(weights, settings["architecture"], device, settings["detect_short_side"])


def _non_max_suppression(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Keep the best-scoring of overlapping boxes (HOG fires several times on one person)."""
    if len(boxes) < 2:
        return boxes
    keep = cv2.dnn.NMSBoxes([[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes],
                            boxes[:, 4].tolist(), 0.0, iou)
    return boxes[np.sort(np.ravel(keep))]


@dataclass
class PersonVerdict:
    """Per-clip result: ``reason`` is None when the clip passes; counts per sampled frame."""

    reason: str | None
    detail: str
    counts: list[int]
    median_area: float | None


def person_verdict(detections: list[np.ndarray], frame_size: tuple[int, int], settings: dict) -> PersonVerdict:
    """Exactly one person through the clip, of a suitable size.

    ``detections``: person boxes per sampled frame (pixels of frames ``frame_size = (H, W)``).
    Boxes under ``min_score`` or smaller than ``min_box_fraction`` of the frame are ignored. Reasons:
    ``no_person`` (more than ``max_missing_fraction`` of the frames show nobody), ``several_people``
    (more than ``max_extra_fraction`` show two or more), ``person_too_small`` / ``person_too_large``
    (median box area of the one-person frames outside ``area_range``).
    """
    height, width = frame_size
    frame_area = float(height * width)
    counts, areas = [], []
    for boxes in detections:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
        box_areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0) / frame_area
        kept = (boxes[:, 4] >= settings["min_score"]) & (box_areas >= settings["min_box_fraction"])
        counts.append(int(kept.sum()))
        if kept.sum() == 1:
            areas.append(float(box_areas[kept][0]))
    total = max(len(counts), 1)
    missing = sum(c == 0 for c in counts) / total
    extra = sum(c >= 2 for c in counts) / total
    median_area = float(np.median(areas)) if areas else None
    if not counts or missing > settings["max_missing_fraction"]:
        return PersonVerdict("no_person", f"no person in {missing:.0%} of {len(counts)} sampled frames", counts,
                             median_area)
    if extra > settings["max_extra_fraction"]:
        return PersonVerdict("several_people", f"two or more people in {extra:.0%} of {len(counts)} sampled frames",
                             counts, median_area)
    low, high = settings["area_range"]
    if median_area is None or median_area < low:
        return PersonVerdict("person_too_small", f"person box covers {median_area or 0:.1%} of the frame "
                                                 f"(minimum {low:.0%})", counts, median_area)
    if median_area > high:
        return PersonVerdict("person_too_large", f"person box covers {median_area:.1%} of the frame "
                                                 f"(maximum {high:.0%})", counts, median_area)
    return PersonVerdict(None, f"one person, box {median_area:.1%} of the frame", counts, median_area)
