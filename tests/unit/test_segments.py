"""Appearance segments on synthetic features with known change points: where the cut lands, the minimum segment
length, the similarity bar, and what split_track keeps of the track."""
import numpy as np

from reid_core.segments import SegmentConfig, cut_points, split_indices, split_track
from reid_core.types import Box, Track


def person(rng, centre, n, noise=0.05):
    f = centre + noise * rng.normal(size=(n, len(centre)))
    return (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)


def centres(rng, k, dim=32):
    c = rng.normal(size=(k, dim))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def test_one_switch_is_cut_exactly_where_it_happens():
    rng = np.random.default_rng(0)
    a, b = centres(rng, 2)
    feats = np.vstack([person(rng, a, 17), person(rng, b, 13)])
    assert cut_points(feats) == [17]
    assert cut_points(person(rng, a, 40)) == []  # one appearance throughout: no cut


def test_two_switches_give_three_segments():
    rng = np.random.default_rng(1)
    a, b, c = centres(rng, 3)
    feats = np.vstack([person(rng, a, 10), person(rng, b, 12), person(rng, c, 9)])
    assert cut_points(feats) == [10, 22]
    assert split_indices(31, [10, 22]) == [range(0, 10), range(10, 22), range(22, 31)]


def test_min_segment_and_similarity_bar():
    rng = np.random.default_rng(2)
    a, b = centres(rng, 2)
    short_tail = np.vstack([person(rng, a, 20), person(rng, b, 2)])
    assert cut_points(short_tail) == []  # 2 odd crops at the end: a side needs min_segment (6), left alone
    assert cut_points(short_tail, SegmentConfig(min_segment=2)) == [20]
    assert cut_points(short_tail[:11]) == []  # under 2 x min_segment crops: never cut
    feats = np.vstack([person(rng, a, 10), person(rng, b, 10)])
    cos = float(a @ b)
    assert cut_points(feats, SegmentConfig(change_similarity=cos - 0.3)) == []  # sides alike enough for this bar
    assert cut_points(feats, SegmentConfig(change_similarity=min(0.99, cos + 0.3))) == [10]


def test_split_track_keeps_everything_in_time_order():
    rng = np.random.default_rng(3)
    a, b = centres(rng, 2)
    n = 20
    frames = list(range(100, 100 + n))
    feats = np.vstack([person(rng, a, 8), person(rng, b, 12)])
    # the track's lists in a shuffled order: split_track sorts by frame and keeps keys/boxes/scores together
    perm = rng.permutation(n)
    track = Track(7, "v" * 64, "cam", keys=[f"k{frames[i]}" for i in perm], frames=[frames[i] for i in perm],
                  boxes=[Box(frames[i], 0, 10, 20) for i in perm], scores=[frames[i] / 1000 for i in perm])
    first, second = split_track(track, feats[perm])
    assert (first.segment, second.segment, first.label, second.label) == (1, 2, "7.1", "7.2")
    assert first.frames == frames[:8] and second.frames == frames[8:]
    assert first.keys == [f"k{f}" for f in frames[:8]]
    assert [b.x for b in second.boxes] == frames[8:] and second.scores == [f / 1000 for f in frames[8:]]
    assert {first.track_id, second.track_id, first.camera, second.video_id} == {7, "cam", "v" * 64}
    whole = Track(8, "v", "c", keys=["x"] * 12, frames=list(range(12)), boxes=[Box(0, 0, 1, 1)] * 12, scores=[1] * 12)
    assert split_track(whole, person(rng, a, 12)) == [whole]  # unsplit: the very same track, segment 0
    assert whole.segment == 0 and whole.label == "8"
