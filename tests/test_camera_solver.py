"""How the bundle adjuster solves: pyceres's solve (the GIL released) against COLMAP's own, beside other threads."""

import math
import sys
import threading
import time
from unittest.mock import patch

import numpy as np
import pycolmap
import pytest

import dynascene_core.camera.bundle as bundle
from dynascene_core.camera.bundle import bundle_adjust
from dynascene_core.camera.trajectory import axis_angle_to_matrix, rotation_angle_deg


def _problem(seed: int = 0) -> tuple:
    """``bundle_adjust``'s arguments for a 12-frame walk that turns, through 400 points seen with 0.3 px noise by a
    160 px camera (320×240), started with every pose 1° and the focal 5% off; and the true world-to-camera poses."""
    rng = np.random.default_rng(seed)
    width, height, focal, frames = 320, 240, 160.0, 12
    points = np.c_[rng.uniform(-3, 3, 400), rng.uniform(-2, 2, 400), rng.uniform(4, 8, 400)]
    w2c = np.tile(np.eye(4), (frames, 1, 1))
    for i in range(frames):
        c2w = np.eye(4)
        c2w[:3, :3] = axis_angle_to_matrix(np.array([0.01, -0.04, 0.005]) * i)
        c2w[:3, 3] = [0.12 * i, 0.02 * i, 0.04 * i]
        w2c[i] = np.linalg.inv(c2w)
    cam = points[None] @ np.transpose(w2c[:, :3, :3], (0, 2, 1)) + w2c[:, None, :3, 3]
    observed = cam[..., :2] / cam[..., 2:] * focal + np.array([width / 2, height / 2])
    observed += rng.normal(0, 0.3, observed.shape)
    start = w2c.copy()
    for i in range(1, frames):
        start[i, :3, :3] = axis_angle_to_matrix(rng.normal(0, 0.01, 3)) @ w2c[i, :3, :3]
    k = np.array([focal, focal, width / 2, height / 2]) * np.array([1.05, 1.05, 1, 1])
    return (observed, start, points + rng.normal(0, 0.05, points.shape), np.ones(400, bool), np.ones(frames, bool),
            k, width, height), w2c


def _adjust(arguments: tuple):
    return bundle_adjust(*arguments, refine_focal=True, max_points=400)


def test_pyceres_is_installed_with_the_ceres_of_pycolmap():
    # requirements.txt installs both; a pair built on different Ceres releases falls back to COLMAP's solve, which
    # holds the GIL and so leaves the camera estimate's helper thread waiting: CI should say so, not slow down
    assert bundle._released_solver() is not None, (pycolmap.__ceres_version__, pycolmap.__version__)


def test_the_released_solve_ends_where_colmaps_own_ends():
    arguments, truth = _problem()
    released = _adjust(arguments)
    with patch.object(bundle, "_SOLVER", False):  # COLMAP's own adjuster, the reference
        own = _adjust(arguments)
    np.testing.assert_allclose(released.w2c, own.w2c, atol=1e-8)
    assert released.focal_px == pytest.approx(own.focal_px, rel=1e-9)
    np.testing.assert_array_equal(released.used, own.used)
    assert abs(released.focal_px / 160.0 - 1) < 0.01  # from 5% off
    relative = released.w2c[-1] @ np.linalg.inv(released.w2c[0])
    assert rotation_angle_deg(relative[:3, :3], (truth[-1] @ np.linalg.inv(truth[0]))[:3, :3]) < 0.3


class _Bystander:
    """A thread that notes whether it ran while ``solving`` was set. A Python thread runs only with the GIL; it
    sleeps between looks, so it never keeps the GIL from the solving thread."""

    def __init__(self):
        self.solving = self.ran = self.stop = False
        self.thread = threading.Thread(target=self._look, daemon=True)

    def _look(self):
        while not self.stop:
            if self.solving:
                self.ran = True
            time.sleep(0.0002)

    def watch(self, solve, *arguments):
        self.solving = True
        try:
            return solve(*arguments)
        finally:
            self.solving = False


def _watched_adjustment(patch_target, attribute: str, wrap) -> bool:
    """Whether a bystander thread ran during the solves of one adjustment, ``patch_target.attribute`` wrapped. The
    interpreter's switch interval is made long, so that a thread holding the GIL keeps it until it blocks: the
    bystander then runs during a solve only if the solve releases the GIL."""
    bystander = _Bystander()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    bystander.thread.start()
    try:
        with patch.object(patch_target, attribute, wrap(getattr(patch_target, attribute), bystander)):
            _adjust(_problem()[0])
    finally:
        bystander.stop = True
        bystander.thread.join()
        sys.setswitchinterval(interval)
    return bystander.ran


def test_a_released_solve_lets_another_thread_run():
    pyceres = bundle._released_solver()
    assert _watched_adjustment(pyceres, "solve",
                               lambda solve, bystander: lambda *a: bystander.watch(solve, *a))


def test_colmaps_own_solve_holds_the_gil():
    # the control of the test above: the same watch around COLMAP's own solve sees no other thread run
    class Watched:
        def __init__(self, adjuster, bystander):
            self.adjuster, self.bystander = adjuster, bystander

        def solve(self):
            return self.bystander.watch(self.adjuster.solve)

    with patch.object(bundle, "_SOLVER", False):
        assert not _watched_adjustment(pycolmap, "create_default_bundle_adjuster",
                                       lambda create, bystander: lambda *a: Watched(create(*a), bystander))


def test_adjustments_on_two_threads_log_only_errors_and_restore_the_level():
    # Ceres's routine warnings are silenced while any adjustment runs; the level the caller set is back once the last
    # one ends, whichever thread that is
    pyceres = bundle._released_solver()
    levels = [pycolmap.logging.minloglevel, pyceres.logging.minloglevel]
    pycolmap.logging.minloglevel = pyceres.logging.minloglevel = 0
    during = []
    try:
        def solve(*arguments, original=pyceres.solve):
            during.append((pycolmap.logging.minloglevel, pyceres.logging.minloglevel))
            original(*arguments)

        with patch.object(pyceres, "solve", solve):
            threads = [threading.Thread(target=_adjust, args=(_problem(seed)[0],)) for seed in (1, 2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert len(during) == 4 and set(during) == {(int(pycolmap.logging.Level.ERROR),) * 2}  # two rounds each
        assert (pycolmap.logging.minloglevel, pyceres.logging.minloglevel) == (0, 0)
    finally:
        pycolmap.logging.minloglevel, pyceres.logging.minloglevel = levels


def test_two_clips_estimated_on_two_threads_end_as_they_do_one_after_the_other():
    # the adjustments of both estimates (and their helper threads) now run side by side: nothing they share may leak
    # between them (the log level, OpenCV's random state, the adjuster's problem)
    from concurrent.futures import ThreadPoolExecutor

    from dynascene_core.camera import estimate_trajectory, make_preset, render_synthetic_clip

    clips = [render_synthetic_clip(make_preset(preset, 12, speed=2.0), 144, 256, seed=3).frames
             for preset in ("truck_right+tilt_up", "dolly_in+pan_right")]
    alone = [estimate_trajectory(frames)[0].c2w.numpy() for frames in clips]
    with ThreadPoolExecutor(2) as pool:
        together = [trajectory.c2w.numpy() for trajectory, _ in pool.map(estimate_trajectory, clips)]
    for one, other in zip(alone, together):
        np.testing.assert_array_equal(one, other)


def test_a_given_focals_second_start_is_adjusted_beside_the_first():
    # the check of a clip that would be reported reliable needs nothing from its solution when the focal is given: the
    # second start is adjusted on the helper thread while the first is adjusted on the calling one. Each adjustment
    # waits (at most 20 s) until the other has begun, so done one after the other the first never sees the second
    import dynascene_core.camera.estimate as estimate
    from dynascene_core.camera import make_preset, render_synthetic_clip

    began = {"first": threading.Event(), "second": threading.Event()}
    seen = {}

    def adjust_start(tracks, start, k, width, height, refine_focal, settings, original=estimate.adjust_start):
        role = "second" if settings is estimate.CHECK else "first"
        if role not in seen:  # the clip's first adjustment of each kind
            began[role].set()
            other = began["second" if role == "first" else "first"]
            seen[role] = (threading.current_thread() is threading.main_thread(), other.wait(20.0))
        return original(tracks, start, k, width, height, refine_focal, settings)

    clip = render_synthetic_clip(make_preset("dolly_in+pan_right", 12, speed=2.0), 144, 256, seed=3)
    with patch.object(estimate, "adjust_start", adjust_start):
        fov = math.degrees(2 * math.atan(0.5 / clip.trajectory.intrinsics[0, 0].item()))  # the width is the longer side
        _, stats = estimate.estimate_trajectory(clip.frames, clip.masks, fov_deg=fov, readout=0)
    assert stats.quality.start_disagreement_deg is not None, stats.quality.summary()
    assert seen == {"first": (True, True), "second": (False, True)}
