"""Per-clip quality report of a camera estimate: numbers, a verdict and the reasons for it.

The verdict is what the data preparation uses to drop clips ("unreliable") and what the ComfyUI node
shows. It is decided from measured quantities only (thresholds below, in pixels at the size the clip was estimated
at, ``width`` × ``height``; set for 512 px, ``estimate.ESTIMATION_SIDE``):

- ``unreliable``: no camera could be estimated (too few background features), or more than a quarter
  of the frames have no trustworthy pose, or the median reprojection error exceeds
  :data:`UNRELIABLE_REPROJECTION_PX`, or fewer than :data:`UNRELIABLE_INLIER_RATIO` of the track observations agree
  with the estimated motion;
- ``uncertain``: some frames unreliable, rotation-only poses kept for a clip that showed parallax (bundle
  adjustment left too many frames unreliable or found no solution, or a turn's error asked for general motion and
  solving for it did not halve that error), reprojection above :data:`UNCERTAIN_REPROJECTION_PX`,
  inlier ratio below :data:`UNCERTAIN_INLIER_RATIO`, few tracks, tracks bunched on less than
  :data:`NARROW_COVERAGE` of the picture, tracks lasting fewer than :data:`SHORT_TRACK_FRAMES` frames on average
  (clips of at least :data:`SHORT_TRACK_MIN_FRAMES`), a focal length that the motion
  could not determine (estimated from too little rotation/parallax), general motion solved on KLT tracks over more
  than :data:`LONG_KLT_FRAMES` frames (their error grows with the clip: 48-frame phone clips end 1.02° / 3.25°
  median / p90 on them, 0.27° / 0.61° on SIFT matches; BENCHMARKS.md, "Long clips"), consecutive frames whose steps
  disagree with their two-view rotations (the bundle adjustment drifted to a wrong solution), a step between frames
  that fewer than ``solutions.STEP_MIN_INLIERS`` inlier points tie together (its turn rests on those few), parallax seen
  only between later frames (frame 0's tracks ended first: the solve starts from frames that do not hold the
  reference frame, and the first frames' turn and travel are weakly separated), or a second
  start from another pair of frames that ends more than :data:`START_DISAGREEMENT_DEG` away (accurate method);
- ``reliable`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

VERDICTS = ("reliable", "uncertain", "unreliable")
UNRELIABLE_REPROJECTION_PX = 3.0
UNCERTAIN_REPROJECTION_PX = 1.5
UNRELIABLE_INLIER_RATIO = 0.3
UNCERTAIN_INLIER_RATIO = 0.6
START_DISAGREEMENT_DEG = 3.0  # degrees between the rotations of two starts
UNRELIABLE_FRAME_SHARE = 0.25
FEW_TRACKS = 60
NARROW_COVERAGE = 0.5  # share of the background's 8×8 cells holding a track (median over frames)
SHORT_TRACK_FRAMES = 3.0  # mean frames a track lasts
SHORT_TRACK_MIN_FRAMES = 6  # shorter clips cannot hold long tracks: the rule above is not applied
FOCAL_UNDETERMINED = "focal length poorly determined by this motion (give the FOV or intrinsics)"
LONG_KLT_FRAMES = 32  # KLT tracks over longer clips hold a general motion's poses off by more as the clip grows
LONG_KLT_CLIP = (f"KLT tracks over more than {LONG_KLT_FRAMES} frames drift (about 1 deg at 48 frames on phone video "
                 "with known poses), and the fast method's feature matches did worse here: try the accurate method")


@dataclass
class CameraQuality:
    """Quality report of one clip's camera estimate (see the module docstring for the verdict rules)."""

    verdict: str  # "reliable", "uncertain" or "unreliable"
    reasons: list[str]  # human-readable, one per finding; empty when reliable
    reprojection_px: float  # median reprojection error of the inlier observations (pixels)
    track_count: int  # background tracks used (seen in at least two frames)
    inlier_ratio: float  # share of the track observations the cameras explain (general motion: bundle.agreeing_share)
    focal_px: float  # focal length in pixels at the clip's resolution (first frame)
    fov_deg: float  # field of view across the longer image side (first frame)
    focal_estimated: bool  # True when the focal was estimated from the clip, False when given
    unreliable_frames: list[int] = field(default_factory=list)  # frames whose pose is not trustworthy
    inconsistent_frames: list[int] = field(default_factory=list)  # frames whose step disagrees with two views
    motion: str = "general"  # "general", "rotation" or "static"
    frames: int = 0
    focal_source: str = "given"  # "given", "estimated", or "assumed" (default FOV: nothing to estimate it from)
    start_disagreement_deg: float | None = None  # largest rotation gap to a second start (deg); None: not compared
    readout: float = 0.0  # rolling-shutter readout the poses were corrected for (frame intervals; 0: none)
    readout_direction: str | None = None  # where that readout goes in the picture: "down", "up", "right", "left"
    coverage: float | None = None  # share of the background's 8×8 cells holding a track (median over frames)
    mean_track_frames: float | None = None  # frames a track lasts on average (tracks seen in at least two)
    tracker: str = "klt"  # what the tracks are: "klt" (followed frame to frame) or "sift" (matched features)
    weakly_linked_frames: list[int] = field(default_factory=list)  # frames tied to those before by few points
    width: int = 0  # the frame size the clip was estimated at (pixels): the pixel figures above are at this size
    height: int = 0

    def to_dict(self) -> dict:
        """JSON-safe dict (plain floats/ints/strings; NaN/inf written as None)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, float) and not math.isfinite(value):
                data[key] = None
            elif isinstance(value, float):
                data[key] = round(value, 4)
        data["unreliable_frames"] = [int(i) for i in self.unreliable_frames]
        data["inconsistent_frames"] = [int(i) for i in self.inconsistent_frames]
        data["weakly_linked_frames"] = [int(i) for i in self.weakly_linked_frames]
        return data

    def summary(self) -> str:
        """One line: verdict, motion, focal, reprojection, tracks, inliers, bad frames, reasons."""
        focal = self.focal_source
        text = (f"{self.verdict}: {self.motion} motion, {self.frames} frames at {self.width}x{self.height}, "
                f"fov {self.fov_deg:.1f} deg "
                f"({focal}, {self.focal_px:.0f} px), reprojection {self.reprojection_px:.2f} px, "
                f"{self.track_count} {self.tracker.upper()} tracks, inliers {100 * self.inlier_ratio:.0f}%")
        if self.readout:
            text += f", rolling shutter {self.readout:.2f} frame, read {self.readout_direction}"
        if self.unreliable_frames:
            text += f", {len(self.unreliable_frames)} unreliable frames"
        if self.reasons:
            text += " — " + "; ".join(self.reasons)
        return text


def _frame_ranges(frames: list[int]) -> str:
    """[1, 2, 3, 7] → "1-3, 7"."""
    parts, start = [], None
    for i, value in enumerate(frames):
        if start is None:
            start = value
        if i + 1 == len(frames) or frames[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts)


def assess(*, frames: int, motion: str, reprojection_px: float, track_count: int, inlier_ratio: float,
           focal_px: float, fov_deg: float, focal_estimated: bool, unreliable_frames: list[int],
           failure: str | None = None, focal_determined: bool = True, focal_source: str | None = None,
           step_disagreement_deg: dict[int, float] | None = None, weak_links: dict[int, int] | None = None,
           fallback: str | None = None, start_disagreement_deg: float | None = None, late_parallax: bool = False,
           readout: float = 0.0, readout_direction: str | None = None, coverage: float | None = None,
           mean_track_frames: float | None = None, tracker: str = "klt", width: int, height: int) -> CameraQuality:
    """Build the :class:`CameraQuality` of a clip and decide its verdict from the measured numbers.

    ``failure``: why no camera could be estimated at all (→ unreliable). ``focal_determined``: False when
    the focal was estimated but the motion carried too little information to fix it. ``focal_source``:
    "given", "estimated" or "assumed" (default: from ``focal_estimated``). ``step_disagreement_deg``: frame →
    angle between its step's rotation and the two-view one, for the runs of disagreeing steps. ``weak_links``:
    frame → how many inlier points tie it to the frames before, for the steps that too few tie (→ uncertain).
    ``fallback``: why a simpler motion model replaced the one the clip's tracks asked for (→ at least uncertain).
    ``start_disagreement_deg``: largest rotation gap between the solution and a second start from another pair of
    frames (None: not checked, or the second start fitted clearly worse); above :data:`START_DISAGREEMENT_DEG` →
    uncertain. ``late_parallax``: the general-motion solve rests on parallax that only later frames showed
    (→ uncertain). ``readout``: the rolling-shutter readout (frame intervals) the tracks were corrected for, and its
    ``readout_direction``; reported, not judged. ``coverage``: share of the background the tracks spread over
    (below :data:`NARROW_COVERAGE` → uncertain); ``mean_track_frames``: how long they last (below
    :data:`SHORT_TRACK_FRAMES` in a clip of at least :data:`SHORT_TRACK_MIN_FRAMES` → uncertain); None: no tracks.
    ``tracker``: "klt" or "sift"; general motion on KLT tracks over more than :data:`LONG_KLT_FRAMES` frames →
    uncertain. ``width``, ``height``: the frame size estimated at.
    """
    bad, doubt = [], []
    if failure:
        bad.append(failure)
    share = len(unreliable_frames) / max(1, frames - 1)
    if unreliable_frames:
        message = f"no trustworthy pose for frames {_frame_ranges(sorted(unreliable_frames))}"
        (bad if share > UNRELIABLE_FRAME_SHARE else doubt).append(message)
    if fallback:
        doubt.append(fallback)
    if motion != "static" and not failure:
        if not math.isfinite(reprojection_px) or reprojection_px > UNRELIABLE_REPROJECTION_PX:
            bad.append(f"reprojection error {reprojection_px:.2f} px > {UNRELIABLE_REPROJECTION_PX:g} px")
        elif reprojection_px > UNCERTAIN_REPROJECTION_PX:
            doubt.append(f"reprojection error {reprojection_px:.2f} px > {UNCERTAIN_REPROJECTION_PX:g} px")
        if inlier_ratio < UNRELIABLE_INLIER_RATIO:
            bad.append(f"only {100 * inlier_ratio:.0f}% of the track observations agree with the camera motion")
        elif inlier_ratio < UNCERTAIN_INLIER_RATIO:
            doubt.append(f"only {100 * inlier_ratio:.0f}% of the track observations agree with the camera motion")
        if track_count < FEW_TRACKS:
            doubt.append(f"few background tracks ({track_count})")
        if coverage is not None and coverage < NARROW_COVERAGE:
            doubt.append(f"the tracks cover only {100 * coverage:.0f}% of the background: bunched on a small part of "
                         "the picture, they tell a turn from a sideways travel poorly")
        if (mean_track_frames is not None and frames >= SHORT_TRACK_MIN_FRAMES
                and mean_track_frames < SHORT_TRACK_FRAMES):
            doubt.append(f"tracks last {mean_track_frames:.1f} frames on average: the picture changes too much between "
                         "frames for a pose to rest on more than two views")
        if focal_estimated and not focal_determined:
            doubt.append(FOCAL_UNDETERMINED)
        if motion == "general" and tracker == "klt" and frames > LONG_KLT_FRAMES:
            doubt.append(LONG_KLT_CLIP)
        if start_disagreement_deg is not None and not start_disagreement_deg <= START_DISAGREEMENT_DEG:  # NaN too
            doubt.append(f"a second initial pair ends up to {start_disagreement_deg:.1f} deg away: the motion is "
                         "ambiguous (a turn and sideways travel fit the tracks about equally)")
        if late_parallax:
            doubt.append("parallax shows only between later frames (frame 0's tracks ended first): the first "
                         "frames' turn and travel are weakly separated")
        if step_disagreement_deg:
            doubt.append(f"the rotations of frames {_frame_ranges(sorted(step_disagreement_deg))} disagree with "
                         f"two-view geometry by up to {max(step_disagreement_deg.values()):.1f} deg")
        if weak_links:
            steps = "the step into frame" if len(weak_links) == 1 else "the steps into frames"
            doubt.append(f"only {min(weak_links.values())} points tie {steps} {_frame_ranges(sorted(weak_links))} to "
                         "the frames before: the turn across it rests on few tracks")
    verdict = "unreliable" if bad else "uncertain" if doubt else "reliable"
    return CameraQuality(verdict, bad + doubt, float(reprojection_px), int(track_count), float(inlier_ratio),
                         float(focal_px), float(fov_deg), bool(focal_estimated),
                         sorted(int(i) for i in unreliable_frames), sorted(int(i) for i in step_disagreement_deg or ()),
                         motion, int(frames), focal_source or ("estimated" if focal_estimated else "given"),
                         None if start_disagreement_deg is None else float(start_disagreement_deg), float(readout),
                         readout_direction if readout else None, None if coverage is None else float(coverage),
                         None if mean_track_frames is None else float(mean_track_frames), tracker,
                         sorted(int(i) for i in weak_links or ()), int(width), int(height))
