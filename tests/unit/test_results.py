"""Result lists after the decision, on hand-built TrackDecisions: re-deciding at another threshold, filtering, the
`--json` contract (with the video's camera and seconds) and the CSV/JSON export. No store, no models."""
import csv
import json

import pytest

from reid_core.errors import InputError
from reid_core.matching import SearchHit, TrackDecision
from reid_core.results import decisions_json, export, filter_hits, hits_json, refine
from reid_core.store import VideoRecord
from reid_core.types import Box, Match

VID = "ab" * 32


def decision(track_id, identity, best, score, frames, segment=0, camera="cam1", threshold=0.6):
    return TrackDecision(track_id, Match(identity, best, score, threshold), list(frames),
                         [Box(10 * f, 5, 20, 40) for f in frames], [f"{VID}/{f:08d}_00" for f in frames], segment,
                         VID, camera)


@pytest.fixture
def decisions():
    return [decision(1, "alice", "alice", 0.82, range(0, 10)),
            decision(2, None, "bob", 0.55, range(5, 8), segment=2),
            decision(3, "bob", "bob", 0.71, range(20, 30), camera=""),
            decision(4, None, None, 0.0, [])]


VIDEO = VideoRecord(VID, "/data/north gate.avi", "north", 10.0, 300, 640, 480)


def test_refine_re_decides_at_a_new_threshold_without_losing_best_match(decisions):
    strict = refine(decisions, threshold=0.75)
    assert [d.match.identity for d in strict] == ["alice", None, None]  # the empty track is dropped (no frames)
    assert [d.match.best_match for d in strict] == ["alice", "bob", "bob"]
    assert all(d.match.threshold == 0.75 for d in strict)
    loose = refine(decisions, threshold=0.5)
    assert [d.match.identity for d in loose] == ["alice", "bob", "bob"]  # track 2 named now: 0.55 >= 0.5
    assert [d.match.score for d in loose] == [0.82, 0.55, 0.71]
    assert decisions[1].match.identity is None  # the input is not changed


def test_refine_filters_identity_frames_and_length(decisions):
    assert [d.track_id for d in refine(decisions, identity="bob")] == [3]
    assert [d.track_id for d in refine(decisions, identity="unknown")] == [2]
    cut = refine(decisions, from_frame=6, to_frame=22)
    assert [d.track_id for d in cut] == [1, 2, 3]
    one, two, three = cut
    assert one.frames == [6, 7, 8, 9] and [b.x for b in one.boxes] == [60, 70, 80, 90]
    assert one.keys == [f"{VID}/{f:08d}_00" for f in (6, 7, 8, 9)]  # keys cut with the frames
    assert three.frames == [20, 21, 22]
    assert (two.segment, two.video_id, two.camera, two.label) == (2, VID, "cam1", "2.2")
    assert [d.track_id for d in refine(decisions, min_crops=4)] == [1, 3]
    assert refine(decisions, from_frame=100) == []


def test_decisions_json_without_and_with_the_video(decisions):
    plain = decisions_json(decisions[:2], 0.6)
    assert set(plain) == {"threshold", "tracks"} and plain["threshold"] == 0.6
    t = plain["tracks"][0]
    assert t == {"track_id": 1, "segment": 0, "identity": "alice", "best_match": "alice", "score": 0.82,
                 "frames": list(range(10)), "boxes": [[10.0 * f, 5.0, 20.0, 40.0] for f in range(10)]}
    assert "camera" not in t and "first_s" not in t
    full = decisions_json(decisions, 0.6, VIDEO)
    assert (full["video"], full["video_id"], full["camera"], full["fps"]) == ("/data/north gate.avi", VID, "north",
                                                                              10.0)
    one, two, three, empty = full["tracks"]
    assert (one["camera"], one["first_s"], one["last_s"]) == ("cam1", 0.0, 0.9)
    assert (two["first_s"], two["last_s"], two["segment"]) == (0.5, 0.7, 2)
    assert three["camera"] == "north"  # a decision without its camera takes the video's
    assert (empty["first_s"], empty["last_s"], empty["identity"]) == (None, None, None)
    no_fps = decisions_json(decisions[:1], 0.6, VideoRecord(VID, "/x.avi", "c", 0.0, 10, 64, 48))
    assert no_fps["tracks"][0]["first_s"] is None and no_fps["tracks"][0]["last_s"] is None
    json.dumps(full, allow_nan=False)  # valid JSON


def test_decisions_json_refuses_decisions_of_another_video(decisions):
    other = VideoRecord("cd" * 32, "/other.avi", "c", 25.0, 10, 64, 48)
    with pytest.raises(InputError, match="abababababab"):
        decisions_json(decisions, 0.6, other)


def test_export_tracks_as_csv_and_json(decisions, tmp_path):
    result = decisions_json(decisions, 0.6, VIDEO)
    rows = list(csv.reader(export(result, tmp_path / "out.csv").open()))
    header, body = rows[0], rows[1:]
    assert header[:9] == ["track_id", "segment", "identity", "best_match", "score", "threshold", "first_frame",
                          "last_frame", "crops"]  # the first nine stay where tools read them by position
    assert header[9:] == ["video", "video_id", "camera", "first_s", "last_s", "boxes"]
    assert len(body) == 4
    r = dict(zip(header, body[1]))
    assert (r["track_id"], r["segment"], r["identity"], r["best_match"], r["score"]) == ("2", "2", "unknown", "bob",
                                                                                           "0.55")
    assert (r["first_frame"], r["last_frame"], r["crops"], r["threshold"]) == ("5", "7", "3", "0.6")
    assert (r["video"], r["video_id"], r["camera"], r["first_s"], r["last_s"]) == ("/data/north gate.avi", VID,
                                                                                    "cam1", "0.5", "0.7")
    assert r["boxes"] == "5:50,5,20,40;6:60,5,20,40;7:70,5,20,40"
    e = dict(zip(header, body[3]))  # the empty track: blank cells, not "None"
    assert (e["identity"], e["best_match"], e["first_frame"], e["first_s"], e["boxes"]) == ("unknown", "", "", "",
                                                                                            "")
    assert dict(zip(header, body[2]))["camera"] == "north"
    path = export(result, tmp_path / "out.JSON")
    assert json.loads(path.read_text()) == result
    with pytest.raises(InputError, match=".csv or .json"):
        export(result, tmp_path / "out.txt")


def test_search_hits_filter_json_and_csv(tmp_path):
    hits = [SearchHit(f"{VID}/00000004_00", VID, "north", 4, Box(1, 2, 3, 4), 7, 0.9),
            SearchHit(f"{'cd' * 32}/00000050_01", "cd" * 32, "south", 50, Box(5.0, 6.0, 7.5, 8.0), 9, 0.4)]
    assert filter_hits(hits, min_score=0.5) == hits[:1]
    assert filter_hits(hits, camera="south") == hits[1:]
    assert filter_hits(hits, video_id="cdcd") == hits[1:]  # an id prefix is enough
    assert filter_hits(hits, from_frame=5, to_frame=60) == hits[1:]
    result = hits_json(hits)
    assert result["results"][0] == {"key": f"{VID}/00000004_00", "video_id": VID, "video": None, "camera": "north",
                                    "frame": 4, "box": [1.0, 2.0, 3.0, 4.0], "track_id": 7, "score": 0.9}
    rows = list(csv.reader(export(result, tmp_path / "hits.csv").open()))
    assert rows[0] == ["rank", "score", "camera", "video_id", "video", "frame", "track_id", "box", "key"]
    assert rows[2] == ["2", "0.4", "south", "cd" * 32, "", "50", "9", "5.0 6.0 7.5 8.0", f"{'cd' * 32}/00000050_01"]
