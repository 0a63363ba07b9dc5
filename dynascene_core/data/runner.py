"""Running the per-video stages on local worker processes or as Ray tasks, with a progress bar per stage.

Both back ends hand out the same two functions, :func:`~.scan.scan_video` (one video) and
:func:`~.build.build_video_clips` (that video's candidate clips), and return
``concurrent.futures.Future`` objects, so the driver loop and the output are the same. Under Ray
the clip-building task (matting) asks for ``run.ray_gpus_per_clip`` GPUs when the cluster has GPUs,
and so does the scan task when the person detector is a torchvision network; the output folder must
be reachable at the same path from every node (a shared file system).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing

from .build import build_video_clips, resolve_device
from .scan import BUILD_STAGES, SCAN_STAGES, scan_video


class InlineExecutor(futures.Executor):
    """Runs each task at submission in this process (``run.workers: 1``): no start-up cost, easy debugging."""

    def submit(self, fn, *args, **kwargs):
        future = futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(exc, KeyboardInterrupt):
                raise
            future.set_exception(exc)
        return future


class LocalBackend:
    """Worker processes on this machine (spawned, so CUDA and threads start clean)."""

    def __init__(self, workers: int, device: str):
        self.device = device
        self.pool = InlineExecutor() if workers <= 1 else futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"))

    def scan(self, path: str, key: str, config: dict) -> futures.Future:
        return self.pool.submit(scan_video, path, key, config, self.device)

    def build(self, source: dict, candidates: list, config: dict, out: str) -> futures.Future:
        return self.pool.submit(build_video_clips, source, candidates, config, out, self.device)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class RayBackend:
    """Ray tasks on the cluster at ``address`` (``"auto"``: the running cluster or a new local one)."""

    def __init__(self, address: str, config: dict):
        import ray

        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError:
                if address != "auto":
                    raise
                ray.init(include_dashboard=False, log_to_driver=False)  # no cluster running: a local one
        self.ray = ray
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        share = config["run"]["ray_gpus_per_clip"] if gpus else 0
        device = "cuda" if share else "cpu"
        detector_gpu = share if config["person"]["detector"] == "torchvision" else 0
        self._scan = ray.remote(num_cpus=1, num_gpus=detector_gpu)(_remote_scan).options(name="scan_video")
        self._build = ray.remote(num_cpus=1, num_gpus=share)(_remote_build).options(name="build_video_clips")
        self.scan_device = "cuda" if detector_gpu else "cpu"
        self.build_device = device

    def scan(self, path: str, key: str, config: dict) -> futures.Future:
        return self._scan.remote(path, key, config, self.scan_device).future()

    def build(self, source: dict, candidates: list, config: dict, out: str) -> futures.Future:
        return self._build.remote(source, candidates, config, out, self.build_device).future()

    def shutdown(self) -> None:
        pass  # the cluster belongs to the caller; ray.shutdown() only when this process started it


def _remote_scan(path, key, config, device):
    return scan_video(path, key, config, device)


def _remote_build(source, candidates, config, out, device):
    return build_video_clips(source, candidates, config, out, device)


def make_backend(ray_address: str | None, config: dict):
    if ray_address:
        return RayBackend(ray_address, config)
    return LocalBackend(config["run"]["workers"], resolve_device(config["matting"]["device"]))


class StageBars:
    """One tqdm bar per stage counting the videos / clips that have gone through it."""

    def __init__(self, enabled: bool):
        from tqdm import tqdm

        self.bars = {stage: tqdm(desc=f"{stage:<10}", unit="clip" if stage in BUILD_STAGES + ("person", "motion")
                                 else "video", position=i, disable=not enabled, leave=True, total=0)
                     for i, stage in enumerate(SCAN_STAGES + BUILD_STAGES)}

    def expect(self, stage: str, count: int) -> None:
        bar = self.bars[stage]
        bar.total += count
        bar.refresh()

    def done(self, stage: str, count: int = 1) -> None:
        if count:
            self.bars[stage].update(count)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
