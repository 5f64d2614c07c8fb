"""Dataset readers: the MOTChallenge-as-ReID rules on a synthetic sequence, Market-1501 names, feature files, and
scoring a feature file (no models; `reid eval --features` through the CLI: tests/integration/test_eval_datasets.py)."""
import json

import cv2
import numpy as np
import pytest

from reid_core.errors import InputError
from reid_core.evaluation import datasets as ds
from reid_core.evaluation.runner import EvalSettings, evaluate_features


def write_sequence(root, rows, frames, persons=None, images=1, seqinfo=True):
    root.mkdir(parents=True, exist_ok=True)
    (root / "gt").mkdir(exist_ok=True)
    (root / "gt" / "gt.txt").write_text("\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    (root / "img1").mkdir(exist_ok=True)
    for i in range(images):
        cv2.imwrite(str(root / "img1" / f"{i + 1:06d}.jpg"), np.full((120, 160, 3), 90, np.uint8))
    if seqinfo:
        (root / "seqinfo.ini").write_text(f"[Sequence]\nname=SYN\nseqLength={frames}\n")
    if persons is not None:
        (root / "persons.json").write_text(json.dumps({"persons": persons}))
    return root


def box_rows(track, frames, h=40, conf=1, extra=(-1, -1, -1)):
    return [(f, track, 10, 10, 20, h, conf, *extra) for f in frames]


def test_mot_protocol_rules_on_a_short_sequence(tmp_path):
    # 80 frames -> 8 pseudo-cameras of 10 frames; short sequence (<= 400), so every box is in the gallery
    rows = (box_rows(1, range(1, 8))            # cam 0: 7 boxes -> query at the median frame 4
            + box_rows(1, range(11, 13))        # cam 1: only 2 boxes -> no query, both in the gallery
            + box_rows(2, range(21, 25))        # cam 2: 4 boxes -> lower median: frame 22
            + box_rows(3, range(21, 31), h=31)  # under 32 px: skipped entirely
            + box_rows(4, range(41, 45), conf=0))  # ignore rows (conf 0)
    seq = write_sequence(tmp_path / "syn", rows, frames=80)
    p = ds.load_mot(seq)
    assert p.identity == "track"
    assert p.chunk_frames == 10
    assert p.skipped_small == 10 and p.skipped_ignored == 4
    assert sorted(zip(p.query.pids.tolist(), (p.query.frames + 1).tolist())) == [(1, 4), (2, 22)]
    assert len(p.gallery) == 7 + 2 + 4 - 2
    assert set(p.gallery.camids.tolist()) == {0, 1, 2}
    q_keys = set(zip(p.query.tracks.tolist(), p.query.frames.tolist()))
    assert not q_keys & set(zip(p.gallery.tracks.tolist(), p.gallery.frames.tolist()))
    counts = p.counts()
    assert counts.queries == 2 and counts.cameras == 3


def test_long_sequences_keep_every_fifth_frame_and_persons_merge_tracks(tmp_path):
    rows = box_rows(1, range(1, 101)) + box_rows(2, range(401, 501)) + box_rows(3, range(601, 650))
    persons = {"alice": [1, 2]}  # track 3 is not listed: it stays its own person
    seq = write_sequence(tmp_path / "long", rows, frames=800, persons=persons)
    p = ds.load_mot(seq)
    assert p.identity == "person" and p.chunk_frames == 100
    names = {int(k): v for k, v in p.persons.items()}
    alice = [pid for pid, n in names.items() if n == "alice"][0]
    assert set(p.query.pids.tolist()) == {alice, [pid for pid, n in names.items() if n == "track 3"][0]}
    assert np.all((p.gallery.frames + 1) % 5 == 0)
    # track 1 (cam 0) and track 2 (cam 4) are the same person in different pseudo-cameras: a real re-entry
    assert sorted(set(p.query.camids[p.query.pids == alice].tolist())) == [0, 4]
    by_track = ds.load_mot(seq, use_persons=False)
    assert by_track.identity == "track" and len(set(by_track.query.pids.tolist())) == 3


def test_mot17_class_column_keeps_pedestrians_only(tmp_path):
    rows = box_rows(1, range(1, 21), extra=(1, 1.0)) + box_rows(2, range(1, 21), extra=(3, 1.0))  # class 3 = car
    p = ds.load_mot(write_sequence(tmp_path / "m17", rows, frames=80))
    assert set(p.query.tracks.tolist()) | set(p.gallery.tracks.tolist()) == {1}
    assert p.skipped_ignored == 20


def test_mot_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        ds.load_mot(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no ground truth"):
        ds.load_mot(tmp_path / "empty")
    seq = write_sequence(tmp_path / "small", box_rows(1, range(1, 5), h=20), frames=10)
    with pytest.raises(InputError, match="32 px"):
        ds.load_mot(seq)
    seq = write_sequence(tmp_path / "noframes", box_rows(1, range(1, 5)), frames=10, images=0)
    with pytest.raises(InputError, match="no frames"):
        ds.load_mot(seq)
    seq = write_sequence(tmp_path / "badpersons", box_rows(1, range(1, 5)), frames=10, persons={"a": [1], "b": [1]})
    with pytest.raises(InputError, match="both"):
        ds.load_mot(seq)


def test_crops_from_image_frames(tmp_path):
    seq = write_sequence(tmp_path / "img", box_rows(1, range(1, 25)), frames=24, images=24)
    p = ds.load_mot(seq)
    crops = ds.cut_crops(p.sequence, p.gallery.frames, p.gallery.boxes)
    assert crops.shape == (len(p.gallery), 256, 128, 3) and crops.dtype == np.uint8
    assert abs(int(crops.mean()) - 90) <= 2  # the grey frames' pixels


def make_market(root):
    for sub, names in {"query": ["0001_c1s1_000151_01.jpg", "0002_c2s1_000301_00.jpg", "-1_c1s1_000001_00.jpg"],
                       "bounding_box_test": ["0001_c2s1_000451_02.jpg", "0000_c3s1_000001_00.jpg",
                                             "-1_c2s1_000002_00.jpg", "0002_c1s2_000001_00.jpg", "notes.txt"]}.items():
        (root / sub).mkdir(parents=True)
        for n in names:
            if n.endswith(".jpg"):
                cv2.imwrite(str(root / sub / n), np.zeros((128, 64, 3), np.uint8))
            else:
                (root / sub / n).write_text("not an image")
    return root


def test_market_layout(tmp_path):
    split = ds.load_market(make_market(tmp_path / "market"))
    assert split.query.pids.tolist() == [1, 2] and split.query.camids.tolist() == [1, 2]
    assert sorted(split.gallery.pids.tolist()) == [0, 1, 2]  # distractor 0 kept, junk -1 dropped
    assert split.dropped_junk == 2
    assert ds.read_images(split.query.paths).shape == (2, 256, 128, 3)
    with pytest.raises(InputError, match="bounding_box_test"):
        ds.load_market(tmp_path)
    (tmp_path / "market" / "query" / "badname.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="PID_cCAM"):
        ds.load_market(tmp_path / "market")


def tiny_features():
    # two identities seen by two cameras; query 1 finds its match first, query 2 second
    qf = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    gf = np.array([[0.9, 0.1, 0], [0.1, 0.9, 0.5], [0.2, 0.8, 0], [0, 0, 1]], np.float32)
    q = ds.Items(np.array([1, 2]), np.array([0, 0]))
    g = ds.Items(np.array([1, 2, 3, 0]), np.array([1, 1, 1, 1]))
    return qf, gf, q, g


def test_feature_file_round_trip_and_scoring(tmp_path):
    qf, gf, q, g = tiny_features()
    path = ds.save_features(tmp_path / "f.npz", qf, gf, q, g)
    ff = ds.load_features(path)
    assert np.array_equal(ff.query_features, qf) and ff.gallery.pids.tolist() == [1, 2, 3, 0]
    report = evaluate_features(path, EvalSettings(), tmp_path / "out")
    # query 2's true match (cos 0.85) is behind item 3 (cos 0.97): AP 1/2
    assert report.rank.mAP == pytest.approx((1 + 0.5) / 2)
    assert report.rank.rank(1) == pytest.approx(0.5)
    assert (tmp_path / "out" / "report.json").is_file() and (tmp_path / "out" / "cmc.png").is_file()


def test_feature_file_aliases_and_errors(tmp_path):
    qf, gf, q, g = tiny_features()
    np.savez(tmp_path / "short.npz", qf=qf, gf=gf, q_pids=q.pids, g_pids=g.pids, q_camids=q.camids,
             g_camids=g.camids)
    assert ds.load_features(tmp_path / "short.npz").query_features.shape == (2, 3)
    np.savez(tmp_path / "missing.npz", qf=qf, gf=gf)
    with pytest.raises(InputError, match="query_pids"):
        ds.load_features(tmp_path / "missing.npz")
    np.savez(tmp_path / "width.npz", qf=qf, gf=gf[:, :2], q_pids=q.pids, g_pids=g.pids, q_camids=q.camids,
             g_camids=g.camids)
    with pytest.raises(InputError, match="same width"):
        ds.load_features(tmp_path / "width.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InputError, match="readable"):
        ds.load_features(tmp_path / "junk.npz")


def test_report_json_has_no_nan_when_no_query_can_be_scored(tmp_path):
    qf, gf, q, _ = tiny_features()
    g = ds.Items(np.array([5, 6, 7, 0]), np.array([1, 1, 1, 1]))  # nobody from the queries is in the gallery
    path = ds.save_features(tmp_path / "f.npz", qf, gf, q, g)
    report = evaluate_features(path, EvalSettings(), tmp_path / "out")
    d = report.to_dict()
    assert d["mAP"] is None and d["R1"] is None and d["num_skipped"] == 2
    json.loads((tmp_path / "out" / "report.json").read_text(), parse_constant=lambda c: pytest.fail(c))
