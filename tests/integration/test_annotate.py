"""Annotated frames and clips: boxes where the tracks are (real PETS09 results), colours, labels, stamps, MP4s
that decode, atomic writes, the frame viewer, and `reid clip-identity` / `reid clip-video`."""
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from reid_core.annotate import (
    KNOWN_BGR,
    UNKNOWN_BGR,
    Overlay,
    draw,
    export_clip,
    frame_view,
    identify_clip,
    overlays_for_decisions,
    sightings_clip,
)
from reid_core.errors import InputError, VideoError
from reid_core.matching import TrackDecision, identify
from reid_core.results import refine
from reid_core.sightings import Sighting, sightings
from reid_core.types import Box, Match
from reid_core.video import file_sha256, read_frame
from tests.integration.conftest import VIDEO
from tests.integration.test_sightings import p_store  # noqa: F401  (the module-scoped store with "p" enrolled)


@pytest.fixture(scope="module")
def decisions(p_store):  # noqa: F811
    store, _, _ = p_store
    return identify(store, VIDEO, 0, 199)


def decode(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def left_edge(image: np.ndarray, box: Box) -> np.ndarray:
    """Pixels on the box's left side, away from the corners and the label."""
    x, y1, y2 = int(round(box.x)), int(round(box.y)), int(round(box.y + box.h))
    return image[y1 + 8:y2 - 4, x].astype(int)


def coloured(image, box, colour) -> bool:
    return np.abs(left_edge(image, box) - colour).mean() < 45


def test_draw_colours_copy_and_scale():
    img = np.full((200, 300, 3), 128, np.uint8)
    a, b = Box(50, 60, 40, 80), Box(150, 60, 40, 80)
    out = draw(img, [Overlay(a, "Zoë · 83% · track 12.2", True), Overlay(b, "unknown · track 5", False, True)])
    assert (img == 128).all()  # the input is untouched
    assert (left_edge(out, a) == KNOWN_BGR).all() and (left_edge(out, b) == UNKNOWN_BGR).all()
    tag = out[45:59, 51:80]  # the label's filled background sits above the box
    assert ((tag == KNOWN_BGR).all(axis=2).mean() > 0.5) and (tag.sum(axis=2) == 0).any()  # green, black text

    def width(image, box, colour):  # how many pixels of the colour a row through the box's middle crosses
        row = image[int(box.y + box.h / 2), : int(box.x + box.w / 2)]
        return int((row == colour).all(axis=1).sum())

    assert width(out, b, UNKNOWN_BGR) > width(out, a, KNOWN_BGR) + 1  # the emphasised one is thicker
    big = draw(cv2.resize(img, (1200, 800)), [Overlay(Box(200, 240, 160, 320), "x", True)])
    assert width(big, Box(200, 240, 160, 320), KNOWN_BGR) > width(out, a, KNOWN_BGR)


def test_labels_for_decisions():
    b1, b2 = Box(1, 2, 3, 4), Box(5, 6, 7, 8)
    ds = [TrackDecision(12, Match("Alice", "Alice", 0.834, 0.7), [3, 4], [b1, b2], segment=2),
          TrackDecision(5, Match(None, "Alice", 0.31, 0.7), [4], [b1])]
    ov = overlays_for_decisions(ds)
    assert ov[3] == [Overlay(b1, "Alice · 83% · track 12.2", True)]
    assert ov[4] == [Overlay(b2, "Alice · 83% · track 12.2", True), Overlay(b1, "unknown · track 5", False)]


def test_export_clip_boxes_where_the_tracks_are(decisions, tmp_path):
    overlays = overlays_for_decisions(decisions)
    out = export_clip(VIDEO, overlays, tmp_path / "c.mp4", 0, 60)
    frames = decode(out)
    assert len(frames) == 61 and frames[0].shape == (576, 768, 3)
    checked = {True: 0, False: 0}
    for f in (15, 30, 60):
        original = read_frame(VIDEO, f)
        for o in overlays.get(f, []):
            if o.box.h < 40 or o.box.x < 2:
                continue
            colour = KNOWN_BGR if o.known else UNKNOWN_BGR
            assert coloured(frames[f], o.box, colour), (f, o)
            assert np.abs(left_edge(frames[f], o.box) - left_edge(original, o.box)).mean() > 25
            checked[o.known] += 1
    assert checked[True] >= 2 and checked[False] >= 2  # "p" in green, strangers in amber
    def white(image):  # bright pixels in the bottom-left corner: the stamp's text (the grass there is dark)
        return int((image[-16:, :120].min(axis=2) > 180).sum())

    assert white(frames[30]) > 20 and white(read_frame(VIDEO, 30)) < 3
    assert [p.name for p in tmp_path.iterdir()] == ["c.mp4"]


def test_export_clip_errors_leave_nothing(decisions, tmp_path):
    with pytest.raises(InputError, match=r"\.mp4"):
        export_clip(VIDEO, {}, tmp_path / "c.avi", 0, 5)
    with pytest.raises(InputError, match="does not exist"):
        export_clip(VIDEO, {}, tmp_path / "nope" / "c.mp4", 0, 5)
    with pytest.raises(VideoError, match="outside"):
        export_clip(VIDEO, {}, tmp_path / "c.mp4", 790, 900)
    with pytest.raises(VideoError, match="after"):
        export_clip(VIDEO, {}, tmp_path / "c.mp4", 50, 40)

    class Failing(dict):
        def get(self, frame, default=None):
            if frame == 5:
                raise RuntimeError("boom")
            return super().get(frame, default)

    target = tmp_path / "keep.mp4"
    target.write_bytes(b"the clip from before")
    with pytest.raises(RuntimeError):
        export_clip(VIDEO, Failing(), target, 0, 10)
    assert target.read_bytes() == b"the clip from before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]  # no temporary file left behind


def test_identify_clip_spans_the_decisions(p_store, decisions, tmp_path):  # noqa: F811
    store, _, _ = p_store
    part = refine(decisions, from_frame=20, to_frame=45)
    first, last = min(d.frames[0] for d in part), max(d.frames[-1] for d in part)
    r = identify_clip(store, VIDEO, part, tmp_path / "i.mp4")
    frames = decode(r.path)
    assert r.frames == len(frames) == last - first + 1 and r.skipped == []
    with pytest.raises(InputError, match="no tracks"):
        identify_clip(store, VIDEO, [], tmp_path / "j.mp4")


def test_sightings_clip(p_store, tmp_path):  # noqa: F811
    store, _, _ = p_store
    found = sightings(store, "p")
    first = found[0]
    # a second, smaller video: its frames are scaled up to the first video's size, boxes with them
    small = tmp_path / "small.mp4"
    w = cv2.VideoWriter(str(small), cv2.VideoWriter_fourcc(*"mp4v"), 10, (384, 288))
    for _ in range(12):
        w.write(np.full((288, 384, 3), 90, np.uint8))
    w.release()
    other = Sighting("p", "matched", file_sha256(small), str(small), "cam2", "9", 0, 9, 0.0, 0.9, 10, 0.8,
                     tuple((f, Box(20, 20, 60, 120)) for f in range(10)))
    moved = replace(first, video=str(tmp_path / "moved.avi"))
    r = sightings_clip(store, [first, moved, other], tmp_path / "s.mp4")
    frames = decode(r.path)
    assert r.frames == len(frames) == first.crops + 10 and len(r.skipped) == 1 and "moved.avi" in r.skipped[0]
    assert all(f.shape == (576, 768, 3) for f in frames)
    box = dict(first.boxes)[first.first_frame]
    assert coloured(frames[0], box, KNOWN_BGR)
    assert coloured(frames[first.crops], Box(40, 40, 120, 240), KNOWN_BGR)  # 2x: scaled with the frame
    r = sightings_clip(store, found, tmp_path / "m.mp4", pad_frames=3, max_frames=12)
    assert r.frames == len(decode(r.path)) == 12
    with pytest.raises(VideoError, match="moved.avi"):
        sightings_clip(store, [moved], tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(InputError):
        sightings_clip(store, [], tmp_path / "x.mp4")


def test_frame_view(p_store, decisions):  # noqa: F811
    store, t, _ = p_store
    f = 30
    tracks_here = [tr for tr in store.tracks(t.video_id, f, f)]
    rgb = frame_view(store, t.video_id, f)
    assert rgb.shape == (576, 768, 3)
    amber = np.array(UNKNOWN_BGR[::-1])
    assert sum(np.abs(left_edge(rgb, tr.boxes[0]) - amber).mean() < 45 for tr in tracks_here) >= len(tracks_here) - 1
    here = [d for d in decisions if f in d.frames]
    hot = here[0]
    box = hot.boxes[hot.frames.index(f)]
    plain = frame_view(store, str(VIDEO), f, here)
    thick = frame_view(store, str(VIDEO), f, here, highlight=hot.label)
    colour = np.array((KNOWN_BGR if hot.match.identity else UNKNOWN_BGR)[::-1])
    row = int(box.y + box.h / 2)
    x = int(box.x)
    span = slice(max(0, x - 8), x + 8)
    assert (thick[row, span] == colour).all(axis=1).sum() > (plain[row, span] == colour).all(axis=1).sum()
    with pytest.raises(VideoError, match="neither"):
        frame_view(store, "not-a-video", 0)


def _cli() -> typer.Typer:
    from reid_core.cli import sightings as cmds

    app = typer.Typer()
    cmds.register(app)
    return app


def test_cli_clips(p_store, tmp_path):  # noqa: F811
    store, _, _ = p_store
    runner = CliRunner()
    r = runner.invoke(_cli(), ["clip-identity", "p", "--out", str(tmp_path / "p.mp4"), "--max-frames", "15",
                               "--store", str(store.path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["frames"] == 15 == len(decode(tmp_path / "p.mp4")) and out["skipped"] == []
    r = runner.invoke(_cli(), ["clip-video", str(VIDEO), "--out", str(tmp_path / "v.mp4"), "--from-frame", "5",
                               "--to-frame", "25", "--store", str(store.path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["frames"] == 21 == len(decode(tmp_path / "v.mp4")) and "p" in out["identities"]
    r = runner.invoke(_cli(), ["clip-video", str(VIDEO), "--out", str(tmp_path / "v.gif"), "--store",
                               str(store.path)])
    assert isinstance(r.exception, InputError) and ".mp4" in str(r.exception)
