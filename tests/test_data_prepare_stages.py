"""Data-preparation stages on their own: clip planning, the one-person verdict, the torchvision person
detector from a local weight file, HOG availability, shot cuts and the pipeline on real footage."""

import os
import sys

import numpy as np
import pytest
import torch

from dynascene_core.data.people import TorchvisionPersonDetector, make_person_detector, person_verdict
from dynascene_core.data.prepare_config import load_prepare_config
from dynascene_core.data.shots import Segment, detect_shots, plan_segments

DATA = os.path.join(os.path.dirname(__file__), "data")
JUGGLE = os.path.join(DATA, "sam2_juggle_640x360.mp4")  # one person, 24 fps, 96 frames
BEDROOM = os.path.join(DATA, "sam2_bedroom_640x360.mp4")  # two children, hand-held camera, 30 fps, 90 frames
PERSON = load_prepare_config()["person"]


def test_shots_become_clips_no_longer_than_the_maximum():
    segments, short = plan_segments([(0, 10), (10, 70), (70, 95)], fps=10.0, min_shot_seconds=2.0,
                                    max_clip_seconds=2.5)
    assert short == [(0, 10)]
    # 60 frames at most 25 per clip -> 3 clips of 20; 25 frames -> one clip
    assert segments == [Segment(1, 0, 10, 30), Segment(1, 1, 30, 50), Segment(1, 2, 50, 70), Segment(2, 0, 70, 95)]


def _box(x0, y0, x1, y1, score=0.9):
    return [x0, y0, x1, y1, score]


@pytest.mark.parametrize("frames, reason", [
    ([[_box(10, 10, 50, 90)]] * 10, None),
    ([[_box(10, 10, 50, 90)]] * 7 + [[]] * 3, "no_person"),  # 30% of frames empty > 20%
    ([[_box(10, 10, 50, 90)]] * 8 + [[]] * 2, None),  # 20% empty is allowed
    ([[_box(10, 10, 50, 90), _box(60, 10, 95, 90)]] * 2 + [[_box(10, 10, 50, 90)]] * 8, "several_people"),
    ([[_box(10, 10, 50, 90), _box(60, 10, 95, 90, 0.3)]] * 10, None),  # low score ignored
    ([[_box(10, 10, 50, 90), _box(60, 10, 60.5, 10.5)]] * 10, None),  # a far-away speck is ignored
    ([[_box(0, 0, 12, 20)]] * 10, "person_too_small"),  # 2.4% < 3%
    ([[_box(0, 0, 100, 90)]] * 10, "person_too_large"),  # 90% > 80%
])
def test_person_verdict(frames, reason):
    verdict = person_verdict([np.array(f, np.float32).reshape(-1, 5) for f in frames], (100, 100), PERSON)
    assert verdict.reason == reason


def test_torchvision_detector_from_a_local_file_keeps_person_boxes(tmp_path):
    detection = pytest.importorskip("torchvision.models.detection")

    torch.manual_seed(0)
    model = detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=91).eval()
    path = tmp_path / "ssdlite.pth"
    torch.save(model.state_dict(), path)
    detector = make_person_detector({**PERSON, "detector": "torchvision", "weights": str(path),
                                     "architecture": "ssdlite320_mobilenet_v3_large"})
    frames = np.random.default_rng(0).integers(0, 255, (2, 96, 128, 3), dtype=np.uint8)
    boxes = detector(frames)
    with torch.no_grad():
        reference = model([torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames])
    for got, ref in zip(boxes, reference):
        person = ref["labels"] == 1
        assert got.shape == (int(person.sum()), 5)
        np.testing.assert_allclose(got[:, :4], ref["boxes"][person].numpy(), atol=1e-4)
        np.testing.assert_allclose(got[:, 4], ref["scores"][person].numpy(), atol=1e-6)


def test_torchvision_detector_refuses_wrong_or_missing_files(tmp_path):
    pytest.importorskip("torchvision")
    from dynascene_core.checkpoints.io import CheckpointError

    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(CheckpointError, match=r"other\.pth.*does not match torchvision's fasterrcnn_resnet50_fpn_v2"):
        TorchvisionPersonDetector(str(path), "fasterrcnn_resnet50_fpn_v2")
    with pytest.raises(ValueError, match="needs person.weights"):
        make_person_detector({**PERSON, "weights": None})
    with pytest.raises(FileNotFoundError, match=r"person\.weights: .*nope\.pth: no such file"):
        make_person_detector({**PERSON, "weights": str(tmp_path / "nope.pth")})


def test_hog_detector_is_refused_clearly_where_opencv_lacks_it():
    import cv2

    if hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        detector = make_person_detector({**PERSON, "detector": "hog"})
        assert detector(np.zeros((1, 128, 64, 3), np.uint8))[0].shape[1] == 5
    else:
        with pytest.raises(RuntimeError, match=rf"OpenCV {cv2.__version__}.*person.detector: torchvision"):
            make_person_detector({**PERSON, "detector": "hog"})


def _joined_real_video(path, fps=24.0):
    """The juggling clip followed by the bedroom clip: one real cut, at frame 48."""
    from dynascene_core.video import read_video, write_video

    frames = np.concatenate([read_video(JUGGLE).frames[:48], read_video(BEDROOM).frames[:48]])
    write_video(str(path), frames, fps)
    return 48


def test_content_detector_finds_the_cut_between_two_real_videos(tmp_path):
    cut = _joined_real_video(tmp_path / "joined.mp4")
    shots, decoded = detect_shots(str(tmp_path / "joined.mp4"), threshold=27.0, min_shot_frames=12)
    assert decoded == 96 and shots == [(0, cut), (cut, 96)]
    assert detect_shots(JUGGLE, 27.0, 12)[0] == [(0, 96)]  # a hand-held real shot is not cut


def test_pipeline_on_real_footage_with_the_real_rvm_loader(tmp_path, monkeypatch):
    """Real decoding, cuts, eq. 3, RVM (random weights through the real loader) and camera on real
    frames. The detector stands in with one centred box (no detector weights here)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from test_matting_rvm import random_state_dict

    from dynascene_core.data import prepare, read_manifest, validate_clip

    src = tmp_path / "src"
    src.mkdir()
    cut = _joined_real_video(src / "joined.mp4")
    rvm = tmp_path / "rvm_mobilenetv3.pth"
    torch.save(random_state_dict("mobilenetv3"), rvm)
    one_box = lambda frames: [np.array([[0.3 * f.shape[1], 0.1 * f.shape[0], 0.6 * f.shape[1], f.shape[0], 1.0]],
                                       np.float32) for f in frames]  # noqa: E731
    monkeypatch.setattr("dynascene_core.data.scan._detector", lambda settings, device: one_box)
    monkeypatch.setattr(prepare, "check_inputs", lambda config: None)
    config = load_prepare_config(None, {
        "resolution": {"min_short_side": 360}, "matting": {"rvm": str(rvm), "min_person_fraction": 0.0},
        "shots": {"min_shot_seconds": 1.0}, "write": {"short_side": 144},
        "motion": {"max_score": 1.0}, "run": {"workers": 1}})
    report = prepare.run_prepare(str(src), str(tmp_path / "out"), config, progress=False)
    assert report["shots"] == 2 and report["videos_readable"] == 1
    scores = report["motion"]["histogram_all_scored"]
    assert sum(scores) == 2 and 0 < report["motion"]["mean_all_scored"] < 1
    records = read_manifest(tmp_path / "out")
    for record in records:  # whatever the camera verdict on random mattes, written clips are complete
        validate_clip(tmp_path / "out", record)
        assert (record.width, record.height) == (256, 144) and record.num_frames == cut
    dropped = sum(sum(v.values()) for v in report["drops"].values())
    assert len(records) + dropped == 2


def test_sources_take_a_single_video_and_refuse_a_binary_list(tmp_path):
    from dynascene_core.data.sources import list_sources

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x01")
    assert list_sources(str(video), [".mp4", ".mov"]) == [str(video)]
    junk = tmp_path / "list.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="list.bin: not a folder, a video"):
        list_sources(str(junk), [".mp4", ".mov"])
