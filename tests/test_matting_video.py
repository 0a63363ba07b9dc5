"""Matting whole videos: chunking with recurrent state, streaming input, downsample ratio, bad input."""

import numpy as np
import pytest
import torch

from dynascene_core.matting import (
    MattingInputError,
    auto_downsample_ratio,
    default_dtype,
    iter_matting,
    matte_video,
    rvm_from_state_dict,
)
from dynascene_core.video import iter_video, read_video, to_tensor, write_video
from test_matting_rvm import random_state_dict  # not "tests.": torch-fidelity installs a "tests" package


@pytest.fixture(scope="module")
def model():
    return rvm_from_state_dict(random_state_dict("mobilenetv3"))


@pytest.fixture
def frames():
    return torch.rand(7, 3, 24, 40, generator=torch.Generator().manual_seed(3))


def test_chunked_equals_one_pass_and_state_is_carried(frames):
    # float64: chunking changes conv batch sizes, and float32 kernels then round differently (~1e-4)
    model = rvm_from_state_dict(random_state_dict("mobilenetv3"), dtype=torch.float64)
    frames = frames[:5].double()
    whole = matte_video(model, frames, chunk=5, downsample_ratio=0.5)
    part = matte_video(model, frames, chunk=2, downsample_ratio=0.5)
    for name in ("alpha", "foreground", "foreground_video"):
        assert torch.allclose(getattr(part, name), getattr(whole, name), atol=1e-6), name
    # restarting the state at each chunk (what forgetting to carry it would do) changes later frames
    restarted = torch.cat([matte_video(model, frames[i:i + 2], chunk=2, downsample_ratio=0.5).alpha
                           for i in range(0, 5, 2)])
    assert torch.allclose(restarted[:2], whole.alpha[:2], atol=1e-6)
    assert float((restarted[2:] - whole.alpha[2:]).abs().max()) > 1e-3


def test_chunked_float32_is_close(model, frames):
    whole = matte_video(model, frames, chunk=7, downsample_ratio=0.5)
    part = matte_video(model, frames, chunk=3, downsample_ratio=0.5)
    assert torch.allclose(part.alpha, whole.alpha, atol=1e-3)


def test_outputs_shapes_and_foreground_video(model, frames):
    result = matte_video(model, frames, chunk=4, downsample_ratio=0.5)
    assert len(result) == 7
    assert result.alpha.shape == (7, 1, 24, 40) and result.foreground.shape == (7, 3, 24, 40)
    assert result.alpha.dtype == torch.float32 and result.alpha.device.type == "cpu"
    assert 0.05 < float(result.alpha.mean()) < 0.95  # a non-trivial matte, so the next checks mean something
    assert torch.allclose(result.foreground_video, frames * result.alpha)
    assert float(result.foreground_video[(result.alpha == 0).expand_as(frames)].abs().max()) == 0


def test_uint8_chunk_iterator_matches_tensor_input(model):
    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, 256, (n, 24, 40, 3), dtype=np.uint8) for n in (2, 4, 1)]
    streamed = matte_video(model, iter(pieces), chunk=3, downsample_ratio=0.5)
    whole = matte_video(model, to_tensor(np.concatenate(pieces)), chunk=7, downsample_ratio=0.5)
    assert torch.allclose(streamed.alpha, whole.alpha, atol=1e-3)  # float32: see the float64 test above
    as_array = matte_video(model, np.concatenate(pieces), chunk=7, downsample_ratio=0.5)
    assert torch.equal(as_array.alpha, whole.alpha)


def test_video_file_streams_through_iter_video(model, tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, torch.rand(3, 3, 24, 32), fps=8)
    streamed = matte_video(model, iter_video(path, chunk=2))
    whole = matte_video(model, to_tensor(read_video(path).frames))
    assert streamed.alpha.shape == (3, 1, 24, 32)
    assert torch.allclose(streamed.alpha, whole.alpha, atol=1e-3)


def test_progress_reports_frames_done(model, frames):
    calls = []
    chunks = list(iter_matting(model, frames, chunk=3, downsample_ratio=0.5,
                               progress=lambda done, total: calls.append((done, total))))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert calls == [(3, 7), (6, 7), (7, 7)]
    calls.clear()
    matte_video(model, iter([np.zeros((2, 16, 16, 3), np.uint8)]), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, None)]


@pytest.mark.parametrize("height, width, ratio", [
    (1080, 1920, 0.25), (1920, 1080, 0.25), (720, 1280, 0.4), (2160, 3840, 0.125), (512, 512, 1.0), (240, 320, 1.0),
])
def test_auto_downsample_ratio_follows_the_authors(height, width, ratio):
    assert auto_downsample_ratio(height, width) == ratio


def test_auto_ratio_keeps_the_internal_size_between_256_and_512():
    for long_side in range(513, 8000, 37):
        internal = long_side * auto_downsample_ratio(long_side // 2, long_side)
        assert 256 <= internal <= 512, long_side


def test_ratio_is_automatic_unless_given(model):
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs["downsample_ratio"]),
                                           with_kwargs=True)
    try:
        matte_video(model, torch.rand(1, 3, 8, 1024))
        matte_video(model, torch.rand(1, 3, 8, 64), downsample_ratio=0.75)
    finally:
        hook.remove()
    assert seen == [0.5, 0.75]


def test_default_dtype_is_fp16_on_cuda_only():
    assert default_dtype("cuda") == torch.float16
    assert default_dtype("cuda:1") == torch.float16
    assert default_dtype("cpu") == torch.float32


@pytest.mark.parametrize("bad, message", [
    (torch.rand(0, 3, 8, 8), r"frames: the video is empty \(0 frames\)"),
    (torch.rand(2, 1, 8, 8), r"expected 3 colour channels \(RGB\).*got 1 \(grayscale frames, shape \(2, 1, 8, 8\)\)"),
    (torch.rand(2, 4, 8, 8), r"got 4 \(RGBA frames"),
    (torch.rand(2, 8, 8), r"expected shape \(F, 3, H, W\), got \(2, 8, 8\)"),
    (torch.rand(2, 3, 8, 8) * 255, r"values must be in \[0, 1\].*divide by 255"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), r"expected float values in \[0, 1\], got dtype torch.uint8"),
    (iter([]), r"frames: the video is empty \(0 frames\)"),
    (iter([np.zeros((2, 8, 8, 4), np.uint8)]), r"frame chunk 0: expected 3 colour channels.*got 4 \(RGBA"),
    (iter([np.zeros((2, 8, 8, 1), np.uint8)]), r"frame chunk 0: .*got 1 \(grayscale"),
    (iter([np.zeros((2, 8, 8, 3), np.float32)]), r"frame chunk 0: expected uint8 pixels, got float32"),
    (iter([np.zeros((2, 8, 8, 3), np.uint8), np.zeros((1, 8, 10, 3), np.uint8)]),
     r"frame size changed from 8x8 to 10x8 \(W x H\) after 2 frames"),
])
def test_bad_frames_give_clear_errors(model, bad, message):
    with pytest.raises(MattingInputError, match=message):
        matte_video(model, bad)


def test_bad_settings_are_refused(model, frames):
    with pytest.raises(MattingInputError, match=r"downsample_ratio must be in \(0, 1\], got 1.5"):
        matte_video(model, frames, downsample_ratio=1.5)
    with pytest.raises(MattingInputError, match="chunk must be >= 1, got 0"):
        matte_video(model, frames, chunk=0)
