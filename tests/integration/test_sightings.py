"""Sightings: where and when an enrolled person was seen (real models on PETS09 frames 0-199), the timeline figure,
JSON/CSV, and `reid timeline`."""
import csv
import json

import pytest
import typer
from typer.testing import CliRunner

from reid_core.enrollment import enroll
from reid_core.errors import StoreError
from reid_core.settings import Settings
from reid_core.sightings import (
    CSV_COLUMNS,
    ENROLLED,
    MATCHED,
    sightings,
    sightings_csv,
    sightings_json,
    timeline_figure,
    write_sightings,
)
from reid_core.video import probe
from tests.integration.conftest import VIDEO

DEFAULT_THRESHOLD = Settings.from_env().threshold  # the embedder in use: its calibrated decision threshold


@pytest.fixture(scope="module")
def p_store(pets_store, tmp_path_factory):
    """A copy of the session store with "p" enrolled from the first 61 frames of the longest track, so the rest
    of that track is a match, not an enrollment."""
    from reid_core.store import Store

    store, _ = pets_store
    dest = tmp_path_factory.mktemp("sightings_store")
    store.env.copy(str(dest))
    s = Store(dest)
    t = max(s.tracks(), key=len)
    a = t.frames[0]
    r = enroll(s, VIDEO, "p", a, a + 60, at_frame=a, box=t.box_at(a))
    return s, t, r


def test_enrolled_and_matched(p_store):
    store, t, r = p_store
    fps = probe(VIDEO).fps
    record = store.video(t.video_id)
    assert fps > 0 and record.fps == fps
    found = sightings(store, "p")
    assert found == sorted(found, key=lambda s: (s.camera, s.video, s.first_frame, s.source))
    assert {s.camera for s in found} == {"pets-view1"} and {s.video for s in found} == {record.path}
    assert {s.video_id for s in found} == {t.video_id}
    enrolled = [s for s in found if s.source == ENROLLED]
    matched = [s for s in found if s.source == MATCHED]
    assert sum(s.crops for s in enrolled) == len(store.identity("p").keys)
    assert min(s.first_frame for s in enrolled) >= t.frames[0]
    assert max(s.last_frame for s in enrolled) <= t.frames[0] + 60
    for s in found:
        assert s.start_s == round(s.first_frame / fps, 3) and s.end_s == round(s.last_frame / fps, 3)
        assert s.crops == len(s.boxes) and s.boxes[0][0] == s.first_frame and s.boxes[-1][0] == s.last_frame
        assert (s.score is None) == (s.source == ENROLLED)
    # the picked track goes on after the enrolled frames: that part is a match, listed once
    assert any(str(t.track_id) == m.track.split(".")[0] and m.first_frame > t.frames[0] + 60 for m in matched)
    assert all(m.score >= DEFAULT_THRESHOLD for m in matched)
    spans = [(e.first_frame, e.last_frame) for e in enrolled]
    assert not any(a <= f <= b for m in matched for f, _ in m.boxes for a, b in spans)
    # the boxes are the stored ones
    box_of = dict(zip(t.frames, t.boxes))
    assert all(box_of[f] == b for f, b in enrolled[0].boxes if f in box_of)


def test_options_and_unknown_name(p_store):
    store, _, r = p_store
    only = sightings(store, "p", include_matches=False)
    assert only and all(s.source == ENROLLED for s in only)
    assert all(s.source == ENROLLED for s in sightings(store, "p", threshold=1.0))
    with pytest.raises(StoreError, match="known: p"):
        sightings(store, "nobody")


def test_timeline_figure(p_store, tmp_path):
    store, _, _ = p_store
    found = sightings(store, "p")
    fig = timeline_figure(found, "p")
    ax = fig.axes[0]
    assert len(ax.collections) == len(found)  # one bar each
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pets-view1\nvtest.avi"]
    assert "(s)" in ax.get_xlabel() and ax.get_title() == "p"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"enrolled", "matched"}
    assert {t.get_text() for t in ax.texts} == {f"track {s.track}" for s in found}
    assert ax.get_xlim()[1] >= max(s.end_s for s in found)
    fig.savefig(tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000
    # without a frame rate the axis is in frames
    from dataclasses import replace
    nofps = [replace(s, start_s=None, end_s=None) for s in found]
    ax = timeline_figure(nofps, "p").axes[0]
    assert "frame" in ax.get_xlabel() and ax.get_xlim()[1] >= max(s.last_frame for s in found)
    assert timeline_figure([], "nobody").axes[0].texts[0].get_text() == "no sightings"


def test_json_and_csv(p_store, tmp_path):
    store, _, _ = p_store
    found = sightings(store, "p")
    j = sightings_json(found, "p", DEFAULT_THRESHOLD)
    assert j["identity"] == "p" and j["cameras"] == ["pets-view1"] and len(j["sightings"]) == len(found)
    first = j["sightings"][0]
    assert set(CSV_COLUMNS) <= set(first) and len(first["frames"]) == len(first["boxes"]) == first["crops"]
    json.dumps(j)  # plain JSON types only
    rows = list(csv.DictReader(sightings_csv(found, tmp_path / "s.csv").open()))
    assert list(rows[0]) == list(CSV_COLUMNS) and len(rows) == len(found)
    for row, s in zip(rows, found):
        assert int(row["first_frame"]) == s.first_frame and float(row["start_s"]) == s.start_s
        assert row["score"] == ("" if s.score is None else str(s.score)) and row["video_id"] == s.video_id
    again = json.loads(write_sightings(found, tmp_path / "s.json", "p").read_text())
    assert again["sightings"] == j["sightings"]


def _cli() -> typer.Typer:
    from reid_core.cli import sightings as cmds

    app = typer.Typer()
    cmds.register(app)
    return app


def test_cli_timeline(p_store, tmp_path):
    store, _, _ = p_store
    runner = CliRunner()
    plot, export = tmp_path / "p.png", tmp_path / "p.csv"
    r = runner.invoke(_cli(), ["timeline", "p", "--store", str(store.path), "--json", "--plot", str(plot),
                               "--export", str(export)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["identity"] == "p" and out["sightings"] == sightings_json(sightings(store, "p"))["sightings"]
    assert plot.stat().st_size > 1000 and len(export.read_text().splitlines()) == len(out["sightings"]) + 1
    r = runner.invoke(_cli(), ["timeline", "p", "--store", str(store.path), "--enrolled-only"])
    assert r.exit_code == 0 and "pets-view1" in r.output and "matched" not in r.output
    assert "vtest.avi" in r.output and "enrolled" in r.output
    r = runner.invoke(_cli(), ["timeline", "nobody", "--store", str(store.path)])
    assert isinstance(r.exception, StoreError)
    r = runner.invoke(_cli(), ["timeline", "p", "--store", str(store.path), "--plot", str(tmp_path / "x.jpg")])
    assert "--plot must end in .png" in str(r.exception)


# ---- identify exports say where and when ---------------------------------------------------------------------
def test_identify_json_and_csv_with_video(p_store, tmp_path):
    from reid_core.errors import InputError
    from reid_core.matching import identify
    from reid_core.results import decisions_json, export, refine

    store, t, _ = p_store
    fps = probe(VIDEO).fps
    decisions = identify(store, VIDEO, 0, 199)
    assert {d.video_id for d in decisions} == {t.video_id} and {d.camera for d in decisions} == {"pets-view1"}
    cut = refine(decisions, from_frame=50, to_frame=120)
    assert {(d.video_id, d.camera) for d in cut} == {(t.video_id, "pets-view1")}
    record = store.video(t.video_id)
    j = decisions_json(decisions, 0.7, record)
    assert (j["video"], j["video_id"], j["camera"], j["fps"]) == (record.path, t.video_id, "pets-view1", fps)
    for d, tr in zip(decisions, j["tracks"]):
        assert {"track_id", "segment", "identity", "best_match", "score", "frames", "boxes"} <= set(tr)
        assert tr["first_s"] == round(d.frames[0] / fps, 3) and tr["last_s"] == round(d.frames[-1] / fps, 3)
        assert tr["camera"] == "pets-view1"
    old = decisions_json(decisions, 0.7)  # without the video: the contract as it was
    assert set(old) == {"threshold", "tracks"}
    assert set(old["tracks"][0]) == {"track_id", "segment", "identity", "best_match", "score", "frames", "boxes"}
    from dataclasses import replace
    assert decisions_json(decisions, 0.7, replace(record, fps=0.0))["tracks"][0]["first_s"] is None
    with pytest.raises(InputError, match="not of"):
        decisions_json(decisions, 0.7, replace(record, video_id="f" * 64))

    rows = list(csv.reader(export(j, tmp_path / "ids.csv").open()))
    head = rows[0]
    assert head[:9] == ["track_id", "segment", "identity", "best_match", "score", "threshold", "first_frame",
                        "last_frame", "crops"]
    assert head[9:] == ["video", "video_id", "camera", "first_s", "last_s", "boxes"]
    for row, d in zip(rows[1:], decisions):
        cells = dict(zip(head, row))
        assert cells["video"] == record.path and cells["video_id"] == t.video_id and cells["camera"] == "pets-view1"
        assert float(cells["first_s"]) == round(d.frames[0] / fps, 3)
        boxes = [item.split(":") for item in cells["boxes"].split(";")]
        assert [int(f) for f, _ in boxes] == d.frames
        assert [float(v) for v in boxes[0][1].split(",")] == d.boxes[0].as_list()
    plain = list(csv.reader(export(old, tmp_path / "old.csv").open()))
    assert plain[1][9:12] == ["", "", ""] and plain[1][14]  # no video: empty cells, boxes still given


def test_cli_identify_says_where_and_when(p_store):
    from reid_core.cli import identities

    store, t, _ = p_store
    app = typer.Typer()
    identities.register(app)
    r = CliRunner().invoke(app, ["identify", str(VIDEO), "--to-frame", "199", "--store", str(store.path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    fps = probe(VIDEO).fps
    assert out["video_id"] == t.video_id and out["fps"] == fps and out["camera"] == "pets-view1"
    assert all(tr["first_s"] == round(tr["frames"][0] / fps, 3) for tr in out["tracks"])
