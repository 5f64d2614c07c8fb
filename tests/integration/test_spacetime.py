"""Across cameras and time, on real footage: wall-clock starts through ingest and the CLI, sightings in time order
across two videos, camera timing (st) on and off, label-free learning, the two-camera PETS clip generator, and the
app's timeline (gradio_client and one browser check).

The second camera is the right part (x 448-767) of PETS frames 0-59 (bench/pets_two_camera.py), ingested as its own
video with its own start; the session store (frames 0-199 of the full view) is the first."""
import csv
import json
import subprocess

import cv2
import numpy as np
import pytest

from bench.pets_two_camera import LEFT, RIGHT, cut_gt, make_clips
from reid_core import clock
from reid_core.enrollment import enroll
from reid_core.ingest import ensure_ingested, ingest
from reid_core.matching import identify, search_image
from reid_core.results import decisions_json
from reid_core.sightings import MATCHED, sightings
from reid_core.spacetime import Transition, learn
from reid_core.st_store import model_file
from reid_core.store import Store, VideoRecord
from reid_core.types import Box
from tests.integration.conftest import ARTIFACTS, GT, VIDEO, reid_cli, served

T0 = clock.parse_start("2009-06-01T12:00:00Z")
LATER = 100.0  # s: the right-view video starts this much after the full view


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("pets2cam"), to_frame=59)


@pytest.fixture(scope="module")
def two_cams(pets_store, clips, tmp_path_factory):
    """The session store copied, the full view given start T0, the right view (frames 0-59) ingested with start
    T0 + 100 s, and "p" enrolled from the full view: a person who is inside the right view then."""
    store, _ = pets_store
    dest = tmp_path_factory.mktemp("st_store")
    store.env.copy(str(dest))
    s = Store(dest)
    ensure_ingested(s, VIDEO, 0, 199, start_time="2009-06-01T12:00:00Z")  # all stored: only the start is new
    right = clips[1]
    ingest(right.video, s, camera="pets-right", start_time=T0 + LATER)
    full_id = next(v.video_id for v in s.videos() if v.camera == "pets-view1")

    def inside_right(t):
        return sum(1 for f, b in zip(t.frames, t.boxes) if f <= 59 and b.x >= RIGHT[0] + 5)

    t = max(s.tracks(full_id), key=inside_right)
    a = next(f for f, b in zip(t.frames, t.boxes) if b.x >= RIGHT[0] + 5)
    enroll(s, VIDEO, "p", a, min(a + 30, 59), at_frame=a, box=t.box_at(a))
    return s, full_id, right


def test_two_camera_clip_generator(clips):
    left, right = clips
    for view, (x0, x1) in zip(clips, (LEFT, RIGHT)):
        cap = cv2.VideoCapture(str(view.video))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 60 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == x1 - x0
        ok, frame = cap.read()
        cap.release()
        source = cv2.VideoCapture(str(VIDEO))
        ok2, full = source.read()
        source.release()
        assert ok and ok2 and np.abs(frame.astype(int) - full[:, x0:x1].astype(int)).mean() < 4  # MJPG: near-lossless
        assert all(0 <= b.x and b.x + b.w <= x1 - x0 + 1e-6 for boxes in view.gt.values() for _, b in boxes)
        assert max(view.gt) <= 59
    # the gap between the views is seen by neither: a box inside it is in no view's gt
    gap = {0: [(7, Box(330.0, 100.0, 100.0, 200.0)), (8, Box(440.0, 100.0, 40.0, 200.0))]}
    assert cut_gt(gap, *LEFT) == {}
    assert cut_gt(gap, *RIGHT) == {0: [(8, Box(0.0, 100.0, 32.0, 200.0))]}  # 32 of 40 px inside: shifted, clipped
    assert (GT.parent / "gt.txt").exists()


def test_start_time_round_trip(two_cams, tmp_path):
    s, full_id, right = two_cams
    full, other = s.video(full_id), next(v for v in s.videos() if v.camera == "pets-right")
    assert (full.start, full.start_source) == (T0, clock.CLI) and other.start == T0 + LATER
    ensure_ingested(s, VIDEO, 0, 199)  # no start given: kept
    assert s.video(full_id).start == T0
    crop = s.get_crops(s.tracks(full_id)[0].keys[:1], jpeg=False)[0]
    assert clock.frame_time(full.start, full.fps, crop.frame) == T0 + crop.frame / full.fps
    old = {k: v for k, v in full.__dict__.items() if k not in ("start", "start_source")}
    assert VideoRecord(**old).start is None and VideoRecord(**old).start_source == "unknown"  # old stores load
    info = json.loads(subprocess.run(reid_cli() + ["info", "--store", str(s.path), "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    starts = {v["camera"]: (v["start"], v["start_source"]) for v in info["videos"]}
    assert starts == {"pets-view1": ("2009-06-01T12:00:00.000Z", "cli"), "pets-right": ("2009-06-01T12:01:40.000Z",
                                                                                        "cli")}
    bad = subprocess.run(reid_cli() + ["ingest", str(right.video), "--store", str(tmp_path / "x"), "--start",
                                       "yesterday"], capture_output=True, text=True)
    assert bad.returncode != 0 and "not ISO-8601" in bad.stderr and "2026-12-02T10:15:00Z" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_sightings_in_time_order_across_two_videos(two_cams, tmp_path):
    s, full_id, _ = two_cams
    found = sightings(s, "p", st=False)
    assert {x.camera for x in found} == {"pets-view1", "pets-right"}
    times = [x.time for x in found]
    assert None not in times and times == sorted(times)
    assert found[0].camera == "pets-view1" and found[-1].camera == "pets-right"  # by time, not by camera name
    assert all(x.thumb.startswith(x.video_id) for x in found)
    out = tmp_path / "p.csv"
    r = subprocess.run(reid_cli() + ["sightings", "p", "--store", str(s.path), "--no-st", "--json", "--csv", str(out)],
                       capture_output=True, text=True, check=True)
    j = json.loads(r.stdout)
    assert [x["start_time"] for x in j["sightings"]] == [clock.iso(t) for t in times]
    assert j["sightings"][0]["start_time"].startswith("2009-06-01T12:00:")
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(found) and rows[-1]["camera"] == "pets-right" and rows[0]["thumbnail"]
    crop = tmp_path / "p.jpg"
    crop.write_bytes(s.get_crops([found[0].thumb])[0].jpeg)
    by_image = json.loads(subprocess.run(reid_cli() + ["sightings", "--image", str(crop), "--store", str(s.path),
                                                       "--json"], capture_output=True, text=True, check=True).stdout)
    assert by_image["sightings"] and {x["camera"] for x in by_image["sightings"]} == {"pets-view1", "pets-right"}
    assert [x["start_time"] for x in by_image["sightings"]] == sorted(x["start_time"] for x in by_image["sightings"])


def test_st_on_off_and_time_unknown(two_cams, store_copy):
    s, full_id, right = two_cams
    model = learn([Transition("pets-view1", "pets-right", LATER - 5 + i) for i in range(10)])
    model.save(model_file(s))
    try:
        plain = sightings(s, "p", st=False)
        timed = sightings(s, "p")  # default: on, the store has a model
        moved = [x for x in timed if x.st]
        assert moved and all(x.visual_score is not None and "pets-view1 -> pets-right" in x.st for x in moved)
        assert not any(x.st for x in plain)
        assert {(x.camera, x.first_frame) for x in timed if x.source == MATCHED} >= \
            {(x.camera, x.first_frame) for x in plain if x.source == MATCHED and x.camera == "pets-view1"}
        # identify on the second camera: the timing to p's enrolled sighting is said, on the same scale
        decided = identify(s, right.video, st=True)
        timed_tracks = [d for d in decided if d.st]
        assert timed_tracks and all("pets-view1 -> pets-right in" in d.st for d in timed_tracks)
        record = s.video(decided[0].video_id)
        j = decisions_json(decided, 0.6, record)
        assert j["start"] == "2009-06-01T12:01:40.000Z" and j["tracks"][0]["first_time"].startswith("2009-06-01T12:01:")
        assert any("visual_score" in t and t["st"] for t in j["tracks"])
        # search by image: the best hit anchors the timing of the others
        crop = s.get_crops([plain[0].thumb])[0].jpeg
        hits = search_image(s, crop, None, st=True)
        assert hits[0].st == "" and any(h.st.startswith("vs the best hit: ") for h in hits[1:])
        assert [h.score for h in search_image(s, crop, None, st=False)] == \
            sorted((h.visual_score if h.visual_score is not None else h.score for h in hits), reverse=True)
    finally:
        model_file(s).unlink()
    # a store whose videos have no start: st on changes nothing at all
    t = max(store_copy.tracks(), key=len)
    enroll(store_copy, VIDEO, "q", t.frames[0], t.frames[0] + 30, at_frame=t.frames[0], box=t.box_at(t.frames[0]))
    model.save(model_file(store_copy))
    on = identify(store_copy, VIDEO, 0, 199, st=True)
    off = identify(store_copy, VIDEO, 0, 199, st=False)
    assert on == off and all(d.visual_score is None and not d.st for d in on)


def test_label_free_learning_in_the_cli(two_cams):
    s, _, _ = two_cams
    try:
        r = json.loads(subprocess.run(reid_cli() + ["st", "learn", "--store", str(s.path), "--json"],
                                      capture_output=True, text=True, check=True).stdout)
        assert r["pairs"] >= 1 and r["source"] == "unlabelled"
        assert {(p["src"], p["dst"]) for p in r["pairs_seen"]} <= {("pets-view1", "pets-right"),
                                                                   ("pets-right", "pets-view1")}
        shown = subprocess.run(reid_cli() + ["st", "show", "--store", str(s.path)], capture_output=True, text=True,
                               check=True).stdout
        assert "camera timing (unlabelled" in shown and "pets-view1 -> pets-right" in shown
    finally:
        model_file(s).unlink(missing_ok=True)


def test_app_timeline(two_cams):
    """gradio_client: the Gallery's sightings carry the wall clock; one browser check: the timeline and its
    thumbnails, a thumbnail opens the frame viewer at that wall-clock time."""
    from gradio_client import Client, handle_file
    from playwright.sync_api import expect, sync_playwright

    import app
    from tests.integration.test_browser import ARGS, CHROMIUM

    s, _, right = two_cams
    demo = app.build_app(s.path)
    with served(demo) as url:
        c = Client(url, verbose=False)
        done = c.predict(handle_file(str(right.video)), "pets-right", None, None, 1, False, "2009-06-01T12:01:40Z",
                         api_name="/ingest")
        assert "Already stored" in done and "start 2009-06-01T12:01:40.000Z (cli)" in done
        bad = c.predict(handle_file(str(right.video)), "pets-right", None, None, 1, False, "noon",
                        api_name="/ingest")
        assert "Not ingested" in bad and "is not ISO" in bad  # markdown-escaped, one line
        msg, plot, table, *_ = c.predict(identity="p", use_timing=False, api_name="/gallery_identity")
        assert "seen" in msg and plot is not None
        wall = [row[9] for row in table["data"]]
        assert wall and wall == sorted(wall) and wall[0].startswith("2009-06-01T12:00:")
        try:
            note, use_st, *_ = c.predict(identity="p", api_name="/st_learn")
            assert "Learned camera timing from" in note and model_file(s).is_file()
            assert use_st in (True, {"value": True, "__type__": "update"})  # the checkbox ticks itself
        finally:
            model_file(s).unlink(missing_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            page.get_by_role("tab", name="Gallery").click()
            expect(page.locator("#timeline img")).to_be_visible(timeout=60_000)
            page.locator("#sighting-thumbs .thumbnail-item").last.click()
            expect(page.locator("#gallery-frame img")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("pets-right · frame").first).to_be_visible()
            expect(page.get_by_text("2009-06-01T12:01:").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "browser_st_timeline.png"), full_page=True)
            browser.close()
