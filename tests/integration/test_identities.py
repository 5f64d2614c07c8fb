"""Enroll / verify / identify / search-image / gallery, through the library, the CLI and the app (gradio_client)."""
import json
import subprocess

import pytest

from reid_core.enrollment import enroll
from reid_core.errors import InputError, StoreError, VideoError
from reid_core.matching import identify, search_image, verify
from reid_core.settings import Settings
from tests.integration.conftest import VIDEO, reid_cli, served

DEFAULT_THRESHOLD = Settings.from_env().threshold  # the embedder in use: its calibrated decision threshold


@pytest.fixture
def longest(store_copy):
    """The longest track of frames 0-199 and where to pick it."""
    t = max(store_copy.tracks(), key=len)
    return store_copy, t


def test_enroll_pick_verify_identify(longest):
    store, t = longest
    a, b = t.frames[0], t.frames[0] + 60
    box = t.box_at(a)
    with pytest.raises(StoreError, match="must be picked"):
        enroll(store, VIDEO, "Alice", a, b)  # several people in range: must pick
    r = enroll(store, VIDEO, "Alice", a, b, at_frame=a, box=box)
    assert r.track_ids == [t.track_id] and len(r.added_keys) > 20 and r.sample_keys
    v = verify(store, VIDEO, "Alice", b + 40, 199)
    assert v.match and v.score >= DEFAULT_THRESHOLD and v.track_id == t.track_id
    decisions = identify(store, VIDEO, 0, 199)
    named = {d.track_id: d.match.identity for d in decisions}
    assert named[t.track_id] == "Alice"
    others = [d for d in decisions if d.track_id != t.track_id and len(d.frames) >= 10]
    assert sum(d.match.identity is None for d in others) >= len(others) - 1  # strangers stay unknown
    assert all(d.match.best_match == "Alice" and d.match.score < 1.0001 for d in decisions)


def test_bad_inputs_leave_store_unchanged(longest, tmp_path):
    store, t = longest
    before = store.dump()
    a = t.frames[0]
    for bad in ["", "   ", "../../etc/x", "bad\x07name", "a/b"]:
        with pytest.raises(StoreError):
            enroll(store, VIDEO, bad, a, a + 30, at_frame=a, box=t.box_at(a))
    with pytest.raises(StoreError, match="no identity"):
        verify(store, VIDEO, "Nobody", 0, 100)
    with pytest.raises(VideoError, match="outside"):
        enroll(store, VIDEO, "Bob", 700, 900)
    from reid_core.types import Box
    with pytest.raises(StoreError, match="nobody tracked is at the picked point"):
        enroll(store, VIDEO, "Bob", 0, 199, at_frame=10, box=Box(5, 500, 20, 40))
    txt = tmp_path / "x.txt"
    txt.write_text("hello")
    with pytest.raises(VideoError):
        enroll(store, txt, "Bob")
    with pytest.raises(InputError):
        search_image(store, b"not an image")
    assert store.dump() == before


def test_search_image_finds_own_track(longest):
    store, t = longest
    crop = store.get_crops([t.keys[len(t.keys) // 2]])[0]
    hits = search_image(store, crop.jpeg, top_k=5)
    assert hits[0].track_id == t.track_id and hits[0].score > 0.95
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def _cli(args, store, check=True):
    r = subprocess.run(reid_cli() + args + ["--store", str(store.path), "--json"], capture_output=True, text=True,
                       timeout=600)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_cli_contract(longest, tmp_path):
    store, t = longest
    a = t.frames[0]
    bx = ",".join(str(v) for v in t.box_at(a).as_list())
    out = json.loads(_cli(["enroll", str(VIDEO), "--name", "Carol", "--from-frame", str(a), "--to-frame",
                           str(a + 50), "--at-frame", str(a), "--box", bx], store).stdout)
    assert out["name"] == "Carol" and out["added_crops"] > 10
    v = json.loads(_cli(["verify", str(VIDEO), "--claim", "Carol", "--from-frame", "100", "--to-frame", "199"],
                        store).stdout)
    assert set(v) == {"claim", "match", "score", "threshold", "track_id"} and v["match"] is True
    export = tmp_path / "ids.csv"
    ident = json.loads(_cli(["identify", str(VIDEO), "--to-frame", "199", "--threshold", "0.8", "--export",
                             str(export)], store).stdout)
    assert ident["threshold"] == 0.8
    for tr in ident["tracks"]:
        assert set(tr) == {"track_id", "segment", "identity", "best_match", "score", "frames", "boxes", "camera",
                           "first_s", "last_s"}
        assert tr["best_match"] == "Carol" and len(tr["frames"]) == len(tr["boxes"])
        assert all(isinstance(f, int) for f in tr["frames"])
    assert "Carol" in export.read_text()
    g = json.loads(_cli(["gallery", "list"], store).stdout)
    assert g["identities"][0]["name"] == "Carol"
    json.loads(_cli(["gallery", "rename", "Carol", "Dana"], store).stdout)
    gone = json.loads(_cli(["gallery", "delete", "Dana"], store).stdout)
    assert gone["crops_removed"] == out["added_crops"]
    bad = _cli(["verify", str(VIDEO), "--claim", "Dana"], store, check=False)
    assert bad.returncode == 2 and "no identity" in json.loads(bad.stdout)["error"]
    crop = tmp_path / "crop.jpg"
    crop.write_bytes(store.get_crops([t.keys[-1]])[0].jpeg)  # the enrolled crops were deleted with Dana
    hits = json.loads(_cli(["search-image", str(crop), "--top-k", "3"], store).stdout)["results"]
    assert hits[0]["track_id"] == t.track_id


def test_app_flows_through_gradio_client(longest, tmp_path):
    from gradio_client import Client, handle_file

    import app

    store, t = longest
    with served(app.build_app(store.path)) as url:
        c = Client(url, verbose=False)
        a = t.frames[0]
        b = t.box_at(a)
        point = f"{b.x + b.w / 2},{b.y + b.h / 2}"
        msg, sample, enrolled = c.predict(handle_file(str(VIDEO)), a, a + 50, "Eve", a, point, api_name="/enroll")
        assert "Enrolled Eve" in msg and len(sample) >= 3 and enrolled["identity"] == "Eve"
        msg, *_ = c.predict(handle_file(str(VIDEO)), 0, 199, "../evil", a, point, api_name="/enroll")
        assert "Not enrolled" in msg and "Traceback" not in msg
        verdict, probe, enrolled_strip, answer = c.predict(handle_file(str(VIDEO)), 100, 199, "Eve",
                                                           DEFAULT_THRESHOLD, api_name="/verify")
        assert "Detected" in verdict and probe and enrolled_strip
        assert answer["match"] is True and answer["claim"] == "Eve" and answer["score"] >= answer["threshold"]
        # named parameters; an empty From frame means the start of the video
        summary, gallery, table, files, result = c.predict(video=handle_file(str(VIDEO)), from_frame="",
                                                           to_frame="199", api_name="/identify")
        assert "tracks named" in summary and any(row[1] == "Eve" for row in table["data"])
        assert len(gallery) == len(table["data"]) == len(result["tracks"])
        assert {f["orig_name"] if isinstance(f, dict) else f.rsplit("/", 1)[1] for f in files} >= {"identify.csv",
                                                                                                  "identify.json"}
        eve = next(t for t in result["tracks"] if t["identity"] == "Eve")
        assert result["camera"] == "pets-view1" and eve["first_s"] == pytest.approx(eve["frames"][0] / result["fps"])
        # refine without recomputing: a threshold of 99% names nobody, the identity filter keeps only Eve
        summary, _, table, _, _ = c.predict(0.99, "", None, None, 0, api_name="/identify_refine")
        assert "0 of" in summary and all(row[1] == "unknown" for row in table["data"])
        crop = tmp_path / "eve.jpg"
        crop.write_bytes(store.get_crops([t.keys[5]])[0].jpeg)
        items, note, rows, _ = c.predict(handle_file(str(crop)), 5, 0.0, "", None, None, api_name="/search_image")
        assert "tracks shown" in note and rows["data"][0][6] == t.track_id and len(items) == 5
        _, note, rows, _ = c.predict(handle_file(str(crop)), 5, 0.0, "", 150, 199, api_name="/search_image")
        assert all(150 <= r[4] <= 199 for r in rows["data"])
        msg, *_ = c.predict(identity="Eve", into="Eve", api_name="/gallery_merge")
        assert "cannot merge 'Eve' into itself" in msg and store.identity("Eve") is not None
        msg, plot, sightings, *_ = c.predict(identity="Eve", api_name="/gallery_identity")
        assert "Eve" in msg and sightings["data"] and plot is not None
        msg, *_ = c.predict("Eve", api_name="/gallery_delete")
        assert "Deleted Eve" in msg and store.identity("Eve") is None
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError, match="Invalid file type"):  # gradio refuses the upload itself, readably
            c.predict(handle_file(__file__), 0, 10, "Zed", 0, "", api_name="/enroll")
        fake = tmp_path / "fake.mp4"
        fake.write_text("not really a video")
        bad = c.predict(handle_file(str(fake)), 0, 10, "Zed", 0, "", api_name="/enroll")[0]
        assert "Not enrolled" in bad and "text file" in bad and "Traceback" not in bad


def test_tracks_joined_across_ingest_runs(store_copy):
    """Footage ingested as two ranges: a person walking through frame 199|200 is one track again for matching."""
    from reid_core.groundtruth import load_mot_gt, majority_gt_id
    from reid_core.ingest import ingest
    from reid_core.stitching import video_tracks
    from tests.integration.conftest import GT

    store = store_copy
    vid = store.tracks()[0].video_id
    ingest(VIDEO, store, camera="pets-view1", from_frame=200, to_frame=240)
    raw = store.tracks(vid)
    joined = video_tracks(store, vid)
    crossing = [t for t in joined if t.frames[0] <= 199 and t.frames[-1] >= 200]
    assert len(joined) < len(raw) and len(crossing) >= 3
    assert sum(len(t) for t in joined) == sum(len(t) for t in raw)  # nothing lost or doubled
    gt = load_mot_gt(GT)
    for t in crossing:  # the parts joined are the same person (by gt), never two people put together
        parts = [r for r in raw if set(r.keys) <= set(t.keys)]
        assert len(parts) == 2 and parts[0].frames[-1] >= 197 and parts[1].frames[0] <= 202
        gids = {majority_gt_id(r, gt)[0] for r in parts} - {None}
        assert len(gids) == 1, (t.track_id, gids)
    assert all(t.frames == sorted(t.frames) for t in joined)


def test_refine_and_export(longest, tmp_path):
    from reid_core.results import decisions_json, export, refine

    store, t = longest
    enroll(store, VIDEO, "Alice", t.frames[0], t.frames[0] + 60, at_frame=t.frames[0], box=t.box_at(t.frames[0]))
    ds = identify(store, VIDEO, 0, 199)
    assert any(d.match.identity == "Alice" for d in ds)
    assert all(d.match.identity is None for d in refine(ds, threshold=1.01))  # re-decided, not recomputed
    assert [d.match.score for d in refine(ds, threshold=-1.0)] == [d.match.score for d in ds]
    assert all(d.match.identity == "Alice" for d in refine(ds, threshold=-1.0))
    only = refine(ds, identity="Alice")
    assert only and all(d.match.identity == "Alice" for d in only)
    assert all(d.match.identity is None for d in refine(ds, identity="unknown"))
    cut = refine(ds, from_frame=50, to_frame=80)
    assert cut and all(50 <= f <= 80 for d in cut for f in d.frames)
    assert all(len(d.frames) == len(d.boxes) == len(d.keys) for d in cut)
    assert all(len(d.frames) >= 20 for d in refine(ds, min_crops=20))
    result = decisions_json(only, 0.8)
    csv_text = export(result, tmp_path / "a.csv").read_text().splitlines()
    assert csv_text[0].startswith("track_id,segment,identity") and len(csv_text) == len(only) + 1
    assert "Alice" in csv_text[1]
    assert json.loads(export(result, tmp_path / "a.json").read_text()) == json.loads(json.dumps(result))
    with pytest.raises(InputError):
        export(result, tmp_path / "a.xlsx")


def test_cli_search_filters_and_export(longest, tmp_path):
    store, t = longest
    crop = tmp_path / "crop.jpg"
    crop.write_bytes(store.get_crops([t.keys[len(t.keys) // 2]])[0].jpeg)
    hits = json.loads(_cli(["search-image", str(crop), "--top-k", "50"], store).stdout)["results"]
    assert hits[0]["track_id"] == t.track_id and hits[0]["video"].endswith("vtest.avi")
    none = json.loads(_cli(["search-image", str(crop), "--camera", "no-such-camera"], store).stdout)["results"]
    assert none == []
    high = json.loads(_cli(["search-image", str(crop), "--min-score", "0.9", "--top-k", "50"], store).stdout)
    assert high["results"] and all(h["score"] >= 0.9 for h in high["results"]) and len(high["results"]) < len(hits)
    out = tmp_path / "hits.csv"
    late = json.loads(_cli(["search-image", str(crop), "--from-frame", "150", "--to-frame", "199", "--export",
                            str(out)], store).stdout)["results"]
    assert late and all(150 <= h["frame"] <= 199 for h in late)
    assert out.read_text().splitlines()[0].startswith("rank,score,camera")
    bad = _cli(["identify", str(VIDEO), "--to-frame", "20", "--export", str(tmp_path / "x.txt")], store, check=False)
    assert bad.returncode == 2 and "csv or .json" in json.loads(bad.stdout)["error"]
    assert json.loads(_cli(["gallery", "list"], store).stdout)["identities"] == []
