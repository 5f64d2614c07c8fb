"""Feature sampling (which crops are embedded at ingest), reading sampled tracks, interpolation and shot changes."""
import numpy as np
import pytest

from reid_core import sampling
from reid_core.chunks import Carry, FrameWork, interpolate, late, placed_crops
from reid_core.errors import StoreError
from reid_core.tracking import Tracker, TrackerConfig, is_shot_change, thumbnail
from reid_core.types import Box, Detection

STRONG = 0.4


def _walk(n: int, x0: float = 100.0, y: float = 100.0, step: float = 2.0, score: float = 0.9) -> list[Detection]:
    return [Detection(f, Box(x0 + step * f, y, 40, 100), score) for f in range(n)]


def _sigs(frames: list[list[Detection]], value: float = 0.5) -> list[np.ndarray]:
    return [np.full((len(d), 96), value, np.float32) for d in frames]


def test_a_person_walking_alone_is_embedded_once_per_window():
    frames = [[d] for d in _walk(20)]
    need = sampling.needs_feature(frames, _sigs(frames), sampling.ChainState(), STRONG, every=5)
    flags = [f[0] for f in need]
    assert flags[0]  # no predecessor: a new person
    # the chain starts at frame 1 (frame 0 is ambiguous); one crop of each window of 5 chain frames
    assert sum(flags) == 1 + 4
    assert sampling.needs_feature(frames, _sigs(frames), sampling.ChainState(), STRONG, every=1) == [[True]] * 20


def test_the_best_crop_of_a_window_is_chosen():
    frames = [[d] for d in _walk(6)]
    frames[3] = [Detection(3, frames[3][0].box, 0.99)]
    frames[2] = [Detection(2, frames[2][0].box, 0.5)]
    need = sampling.needs_feature(frames, _sigs(frames), sampling.ChainState(), STRONG, every=5)
    assert [f[0] for f in need] == [True, False, False, True, False, False]


def test_overlapping_people_new_people_and_changed_looks_are_always_embedded():
    a, b = _walk(10), _walk(10, x0=125.0)  # boxes 40 px wide 25 px apart: they overlap
    far = _walk(10, x0=600.0)
    frames = [[a[f], b[f], far[f]] for f in range(10)]
    need = sampling.needs_feature(frames, _sigs(frames), sampling.ChainState(), STRONG, every=5)
    assert all(f[0] and f[1] for f in need)  # the two who overlap: every frame
    assert sum(f[2] for f in need) == 1 + 2  # the one alone: new, then one per window
    sigs = _sigs(frames)
    sigs[6][2] = 0.9  # the lone person's colours change at frame 6 (a shot change, someone else there)
    need = sampling.needs_feature(frames, sigs, sampling.ChainState(), STRONG, every=5)
    assert need[6][2]
    weak = [[Detection(f, a[f].box, 0.2)] for f in range(5)]
    assert not any(f[0] for f in sampling.needs_feature(weak, _sigs(weak), sampling.ChainState(), STRONG, 5))


def test_the_chain_state_carries_the_previous_frame_to_the_next_chunk():
    walk = _walk(10)
    state = sampling.ChainState()
    first = [[d] for d in walk[:5]]
    sampling.needs_feature(first, _sigs(first), state, STRONG, every=5)
    second = [[d] for d in walk[5:]]
    need = sampling.needs_feature(second, _sigs(second), state, STRONG, every=5)
    assert sum(f[0] for f in need) == 1  # continues the chain: one crop for the window, no "new person"
    fresh = sampling.needs_feature(second, _sigs(second), sampling.ChainState(), STRONG, every=5)
    assert fresh[0][0] and sum(f[0] for f in fresh) == 2  # without the state frame 0 is a new person


def test_fill_takes_the_nearest_sampled_crop_of_the_track():
    feats = np.array([[1, 0], [0, 0], [0, 0], [0, 1], [0, 0]], np.float32)
    present = np.array([True, False, False, True, False])
    out = sampling.fill(feats, present, [10, 11, 12, 13, 20])
    assert out.tolist() == [[1, 0], [1, 0], [0, 1], [0, 1], [0, 1]]
    with pytest.raises(ValueError):
        sampling.fill(feats, np.zeros(5, bool), [0, 1, 2, 3, 4])


class _FakeStore:
    def __init__(self, feats: dict[str, np.ndarray], tracks: dict[int, list[str]]):
        self.feats, self.tracks = feats, tracks

    def features_where(self, keys):
        keys = list(keys)
        out = np.zeros((len(keys), 2), np.float32)
        present = np.array([k in self.feats for k in keys], bool)
        for i, k in enumerate(keys):
            if k in self.feats:
                out[i] = self.feats[k]
        return out, present

    def track_keys(self, track_id):
        return self.tracks.get(track_id, [])


def test_track_features_falls_back_to_the_whole_stored_track():
    keys = [f"v/{f:08d}_00" for f in range(6)]
    store = _FakeStore({keys[0]: np.array([1, 0], np.float32), keys[5]: np.array([0, 1], np.float32)}, {7: keys})
    assert sampling.track_features(store, keys[1:3], [1, 2], 7).tolist() == [[1, 0], [1, 0]]  # none in the range
    assert sampling.track_features(store, keys[3:], [3, 4, 5], 7).tolist() == [[0, 1]] * 3
    with pytest.raises(StoreError):
        sampling.track_features(_FakeStore({}, {7: keys}), keys[1:3], [1, 2], 7)


def _work(frame: int, dets: list[Detection], assigned: list[tuple[int, int]], detected: bool = True) -> FrameWork:
    w = FrameWork(frame, np.zeros((8, 8, 3), np.uint8), dets, detected=detected)
    w.features = np.zeros((len(dets), 2), np.float32)
    w.assigned = assigned
    return w


def test_frames_between_detections_are_interpolated_and_marked():
    carry = Carry(max_gap=6)
    a = _work(0, [Detection(0, Box(0, 0, 10, 20), 0.8)], [(0, 1)])
    skipped = _work(1, [], [], detected=False)
    b = _work(2, [Detection(2, Box(10, 0, 10, 20), 0.6)], [(0, 1)])
    interpolate([a, skipped, b], carry)
    (tid, box, score), = skipped.interpolated
    assert tid == 1 and box == Box(5, 0, 10, 20) and score == pytest.approx(0.7)
    placed = placed_crops(skipped)
    assert placed[0].interpolated and placed[0].feature is None and placed[0].bb == 0
    # a detector frame where the track was missed is filled too, numbered after that frame's detections
    c = _work(4, [Detection(4, Box(90, 90, 10, 20), 0.9)], [(0, 2)])
    d = _work(6, [Detection(6, Box(30, 0, 10, 20), 0.9)], [(0, 1)])
    interpolate([c, d], carry)
    assert [p.bb for p in placed_crops(c)] == [0, 1] and placed_crops(c)[1].interpolated


def test_a_shot_change_ends_every_track_and_no_box_is_interpolated_across_it():
    dark, light = np.zeros((36, 64, 3), np.uint8), np.full((36, 64, 3), 200, np.uint8)
    assert is_shot_change(thumbnail(dark), thumbnail(light)) and not is_shot_change(thumbnail(dark), thumbnail(dark))
    assert not is_shot_change(None, thumbnail(dark))
    tracker = Tracker(TrackerConfig(appearance_gate=0.0))
    det = [Detection(0, Box(100, 100, 40, 100), 0.9)]
    for _ in range(3):
        first = tracker.update(det)
    tracker.end_all()
    tracker.update(det)
    again = tracker.update(det)
    assert first and again and first[0][1] != again[0][1]  # the same box after the change is a new track


def test_every_track_gets_a_feature_in_every_chunk():
    dets = [Detection(0, Box(0, 0, 10, 20), 0.9), Detection(0, Box(50, 0, 10, 40), 0.3)]
    w = _work(0, dets, [(0, 1), (1, 2)])
    w.features[0] = [1, 0]
    assert late([w], STRONG, feature_every=5) == [(w, 1)]  # track 2 had none: its best crop
    assert late([w], STRONG, feature_every=1) == [(w, 1)]  # every crop: the kept weak box
