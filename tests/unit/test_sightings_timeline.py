"""Sightings presented: the timeline figure (rows per camera/video, bar spans, colours, seconds or frames), and the
JSON/CSV exports, on hand-built Sighting objects. No store, no models."""
import csv
import json

import pytest
from matplotlib.colors import to_hex

from reid_core.errors import InputError
from reid_core.sightings import (
    CSV_COLUMNS,
    ENROLLED,
    ENROLLED_COLOUR,
    MATCHED,
    MATCHED_COLOUR,
    Sighting,
    sightings_json,
    timeline_figure,
    write_sightings,
)
from reid_core.types import Box

VID = "ab" * 32


def sighting(source, camera, video, track, first, last, fps=10.0, score=None):
    return Sighting("alice", source, VID, video, camera, track, first, last,
                    None if fps is None else first / fps, None if fps is None else last / fps, last - first + 1,
                    score, ((first, Box(1, 2, 3, 4)), (last, Box(5, 6, 7, 8))))


FOUND = [sighting(ENROLLED, "north", "/v/a.avi", "3", 0, 49),
         sighting(MATCHED, "north", "/v/a.avi", "7.2", 100, 129, score=0.71),
         sighting(MATCHED, "south", "/v/b.avi", "2", 20, 20, score=0.66)]


def bars(fig):
    ax = fig.axes[0]
    return ax, [c for c in ax.collections if len(c.get_paths())]


def test_timeline_rows_bars_and_colours():
    fig = timeline_figure(FOUND, title="alice")
    ax, bar_sets = bars(fig)
    assert ax.get_title() == "alice" and ax.get_xlabel() == "time in the video (s)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["north\na.avi", "south\nb.avi"]
    assert len(bar_sets) == 3
    spans = [c.get_paths()[0].get_extents() for c in bar_sets]
    assert spans[0].x0 == pytest.approx(0.0) and spans[0].x1 == pytest.approx(4.9)
    assert spans[1].x0 == pytest.approx(10.0) and spans[1].x1 == pytest.approx(12.9)
    assert spans[2].x1 - spans[2].x0 > 0  # a one-frame sighting still gets a visible bar
    assert spans[0].y0 < 0 < spans[0].y1 and spans[2].y0 < 1 < spans[2].y1  # rows by camera/video
    colours = [to_hex(c.get_facecolor()[0]) for c in bar_sets]
    assert colours == [ENROLLED_COLOUR, MATCHED_COLOUR, MATCHED_COLOUR]
    labels = {t.get_text() for t in ax.texts}
    assert labels == {"track 3", "track 7.2", "track 2"}


def test_timeline_in_frames_without_fps_and_empty():
    fig = timeline_figure([sighting(ENROLLED, "c", "/v/a.avi", "1", 30, 60, fps=None)])
    ax, bar_sets = bars(fig)
    assert ax.get_xlabel() == "frame (frame rate unknown)"
    ext = bar_sets[0].get_paths()[0].get_extents()
    assert (ext.x0, ext.x1) == (pytest.approx(30), pytest.approx(60))
    empty = timeline_figure([])
    assert [t.get_text() for t in empty.axes[0].texts] == ["no sightings"]


def test_sightings_json_and_csv(tmp_path):
    d = sightings_json(FOUND, threshold=0.6)
    assert (d["identity"], d["threshold"], d["cameras"]) == ("alice", 0.6, ["north", "south"])
    s = d["sightings"][1]
    assert (s["track"], s["start_s"], s["end_s"], s["score"], s["crops"]) == ("7.2", 10.0, 12.9, 0.71, 30)
    assert s["frames"] == [100, 129] and s["boxes"] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    path = write_sightings(FOUND, tmp_path / "s.json", threshold=0.6)
    assert json.loads(path.read_text()) == d
    rows = list(csv.reader(write_sightings(FOUND, tmp_path / "s.csv").open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 4
    first = dict(zip(CSV_COLUMNS, rows[1]))
    assert (first["source"], first["score"], first["start_s"], first["video_id"]) == ("enrolled", "", "0.0", VID)
    with pytest.raises(InputError, match=".csv or .json"):
        write_sightings(FOUND, tmp_path / "s.xlsx")
