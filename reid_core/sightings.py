"""Where and when an identity was seen: its enrolled segments and the stored tracks that match it, per camera and
video, with frames, seconds and boxes; as a timeline figure, JSON and CSV.

Two sources: "enrolled" sightings are the identity's own crops (one per appearance-consistent segment, as the
gallery uses them, reid_core.matching.identity_segments); "matched" sightings are stored tracks whose best gallery
match is this identity at or above the threshold (the same decision `identify` makes). Where a matched track
covers frames of an enrolled segment of the same video, the enrolled one is listed and the matched track keeps only
its frames outside it (one person is not in one picture twice; what the user confirmed wins over a guess).

Sightings are in time order: by wall clock where their video's start is known (reid_core/clock.py; those come
first), then by camera, video and first frame. With camera timing on (st, reid_core/spacetime.py) a stored track's
decision uses the st-adjusted score on the same cosine scale, so the threshold means what it meant without it.
A sighting can also start from an image (`image_sightings`): every stored track whose best crop is at least the
threshold similar to it.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from reid_core import clock
from reid_core.errors import InputError, StoreError
from reid_core.matching import Gallery, identity_segments, search_image, track_feature
from reid_core.settings import Settings, current
from reid_core.st_store import resolve as resolve_st
from reid_core.st_store import span as st_span
from reid_core.stitching import video_tracks
from reid_core.store import Store, VideoRecord
from reid_core.types import Box, Track

SightingSource = Literal["enrolled", "matched"]
ENROLLED: Final = "enrolled"
MATCHED: Final = "matched"
CSV_COLUMNS = ("identity", "source", "camera", "video", "video_id", "track", "first_frame", "last_frame", "start_s",
               "end_s", "crops", "score", "start_time", "end_time", "thumbnail", "visual_score", "st")


@dataclass(frozen=True)
class Sighting:
    identity: str
    source: SightingSource  # ENROLLED or MATCHED
    video_id: str
    video: str  # the path the video was ingested from
    camera: str
    track: str  # Track.label: "12", or "12.2" for the second appearance segment of track 12
    first_frame: int
    last_frame: int
    start_s: float | None  # frame / fps of the stored video; None when its frame rate is unknown
    end_s: float | None
    crops: int
    score: float | None  # the match's cosine; None for enrolled segments
    boxes: tuple[tuple[int, Box], ...] = ()
    time: float | None = None  # wall clock of the first frame (UTC epoch seconds); None: the video's start unknown
    end_time: float | None = None
    thumb: str = ""  # the crop key of the sighting's middle crop (a thumbnail)
    visual_score: float | None = None  # the plain cosine where camera timing moved `score`
    st: str = ""  # why timing moved it

    @property
    def span(self) -> str:
        if self.start_s is None or self.end_s is None:
            return f"frames {self.first_frame}..{self.last_frame}"
        return f"{self.start_s:.1f}-{self.end_s:.1f} s"


def sightings(store: Store, name: str, threshold: float | None = None, include_matches: bool = True,
              settings: Settings | None = None, st: bool | None = None) -> list[Sighting]:
    """Every sighting of the identity `name` in time order (see the module doc; threshold: the embedder's
    calibrated one unless given; st: camera timing, None = if the store has a model)."""
    settings = current(settings)
    threshold = settings.threshold if threshold is None else threshold
    ident = store.identity(name)
    if ident is None:
        known = ", ".join(i.name for i in store.identities()) or "none enrolled yet"
        raise StoreError(f"no identity named {name!r} (known: {known})")
    if not ident.keys:
        return []
    videos = {v.video_id: v for v in store.videos()}
    enrolled = [seg for seg, _ in identity_segments(store, ident, settings.segments)]
    out = [_sighting(ident.name, ENROLLED, seg, seg.frames, seg.boxes, None, videos.get(seg.video_id))
           for seg in enrolled]
    if include_matches:
        gallery = Gallery.load(store, settings=settings)
        model = resolve_st(store, st)
        spans: dict[str, list[tuple[int, int]]] = {}
        for seg in enrolled:
            spans.setdefault(seg.video_id, []).append((seg.frames[0], seg.frames[-1]))
        for video_id, record in videos.items():
            for t in video_tracks(store, video_id, settings=settings):
                probe = st_span(record, t.camera, t.frames[0], t.frames[-1])
                m, fac, visual = gallery.match_st(track_feature(store, t), threshold, probe, model)
                if m.identity != ident.name:
                    continue
                moved = fac is not None and fac.p is not None
                for frames, boxes in _outside(t, spans.get(video_id, [])):
                    out.append(_sighting(ident.name, MATCHED, t, frames, boxes, m.score, record,
                                         visual if moved else None, fac.text if moved and fac else ""))
    return in_time_order(out)


def in_time_order(found: list[Sighting]) -> list[Sighting]:
    """Wall-clock order where known (first), then camera, video, first frame."""
    return sorted(found, key=lambda s: (s.time is None, s.time if s.time is not None else 0.0, s.camera, s.video,
                                        s.first_frame, s.source))


def image_sightings(store: Store, image: bytes, threshold: float | None = None, settings: Settings | None = None,
                    st: bool | None = None, label: str = "image") -> list[Sighting]:
    """Every stored track whose best crop is at least `threshold` similar to the image (the search-by-image score,
    st-adjusted when camera timing is on), as MATCHED sightings of `label`, in time order."""
    settings = current(settings)
    threshold = settings.threshold if threshold is None else threshold
    hits = [h for h in search_image(store, image, None, settings, st) if h.score >= threshold]
    videos = {v.video_id: v for v in store.videos()}
    tracks = {t.track_id: t for vid in {h.video_id for h in hits} for t in store.tracks(vid)}
    out = []
    for h in hits:
        t = tracks.get(h.track_id)
        if t is None or not t.frames:
            continue
        out.append(_sighting(label, MATCHED, t, t.frames, t.boxes, h.score, videos.get(h.video_id), h.visual_score,
                             h.st))
    return in_time_order(out)


def _outside(t: Track, spans: list[tuple[int, int]]) -> list[tuple[list[int], list[Box]]]:
    """The track's crops outside the enrolled spans, as runs cut wherever an enrolled span lay between them."""
    pieces: list[tuple[list[int], list[Box]]] = []
    last = None
    for f, b in zip(t.frames, t.boxes):
        if any(a <= f <= z for a, z in spans):
            last = None
            continue
        if last is None or any(last < a <= f for a, _ in spans):
            pieces.append(([], []))
        pieces[-1][0].append(f)
        pieces[-1][1].append(b)
        last = f
    return pieces


def _sighting(name: str, source: SightingSource, t: Track, frames: list[int], boxes: list[Box], score: float | None,
              video: VideoRecord | None, visual: float | None = None, st: str = "") -> Sighting:
    fps = video.fps if video is not None and video.fps and video.fps > 0 else None
    start = video.start if video is not None else None
    keys = dict(zip(t.frames, t.keys))
    mid = frames[len(frames) // 2]
    return Sighting(identity=name, source=source, video_id=t.video_id, video=video.path if video else "",
                    camera=t.camera, track=t.label, first_frame=int(frames[0]), last_frame=int(frames[-1]),
                    start_s=round(frames[0] / fps, 3) if fps else None,
                    end_s=round(frames[-1] / fps, 3) if fps else None, crops=len(frames),
                    score=None if score is None else round(float(score), 4),
                    boxes=tuple((int(f), b) for f, b in zip(frames, boxes)),
                    time=clock.frame_time(start, fps or 0.0, frames[0]),
                    end_time=clock.frame_time(start, fps or 0.0, frames[-1]), thumb=keys.get(mid, ""),
                    visual_score=None if visual is None else round(float(visual), 4), st=st)


# ---- presenting -------------------------------------------------------------------------------------------------
ENROLLED_COLOUR = "#2e7d32"  # green, as named people are drawn in annotated frames
MATCHED_COLOUR = "#f9a825"  # amber: a decision the system made, not the user


def timeline_figure(found: list[Sighting], title: str = "", thumbs: dict[str, bytes] | None = None):
    """A matplotlib Figure: one bar per sighting from its start to its end, enrolled and matched in two colours,
    track labels on the bars. Where every sighting's wall clock is known (time x camera): one row per camera, x in
    seconds after the first sighting, so transitions between cameras line up; else one row per camera/video, x in
    seconds of the video (or frames where a frame rate is unknown). thumbs: crop key -> JPEG, drawn above the bars
    of the sightings whose thumbnail it is. Built without pyplot, so it is safe in worker threads and any backend."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    wall = bool(found) and all(s.time is not None and s.end_time is not None for s in found)
    seconds = all(s.start_s is not None for s in found)
    rows = sorted({(s.camera, "" if wall else s.video) for s in found})
    height = 1.2 + (1.1 if thumbs else 0.6) * max(1, len(rows))
    fig = Figure(figsize=(10, height), layout="constrained")
    ax = fig.add_subplot()
    if title:
        ax.set_title(title)
    if not found:
        ax.text(0.5, 0.5, "no sightings", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        ax.set_xlabel("time (s)")
        return fig
    origin = min(s.time for s in found if s.time is not None) if wall else 0.0

    def extent(s: Sighting) -> tuple[float, float]:
        if wall:
            assert s.time is not None and s.end_time is not None, "wall: every sighting has both"
            return s.time - origin, s.end_time - origin
        if not seconds:
            return s.first_frame, s.last_frame
        assert s.start_s is not None and s.end_s is not None, "seconds: every sighting has a start (and so an end)"
        return s.start_s, s.end_s

    spans = [extent(s) for s in found]
    least = max(1e-3, (max(b for _, b in spans) - min(a for a, _ in spans)) / 300)  # one-frame sightings stay visible
    for s, (start, end) in zip(found, spans):
        y = rows.index((s.camera, "" if wall else s.video))
        width = max(end - start, least)
        colour = ENROLLED_COLOUR if s.source == ENROLLED else MATCHED_COLOUR
        half = 0.2 if thumbs else 0.35  # with thumbnails, thinner bars leave them room above
        ax.broken_barh([(start, width)], (y - half, 2 * half), facecolors=colour, edgecolors="black", linewidths=0.5)
        ax.text(start + width / 2, y, f"track {s.track}", ha="center", va="center", fontsize=8, clip_on=True)
        if thumbs and s.thumb in thumbs:
            _thumbnail(ax, thumbs[s.thumb], start + width / 2, y - half - 0.02)
    if wall:
        ax.set_yticks(range(len(rows)), [cam for cam, _ in rows], fontsize=8)
        ax.set_xlabel(f"wall clock: seconds after {clock.iso(origin)}")
        ax.set_ylabel("camera")
    else:
        ax.set_yticks(range(len(rows)), [f"{cam}\n{Path(video).name or '?'}" for cam, video in rows], fontsize=8)
        ax.set_xlabel("time in the video (s)" if seconds else "frame (frame rate unknown)")
        ax.set_ylabel("camera / video")
    ax.set_ylim(-0.6 - (0.2 if thumbs else 0.0), len(rows) - 0.4)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=[Patch(facecolor=ENROLLED_COLOUR, label="enrolled"),
                       Patch(facecolor=MATCHED_COLOUR, label="matched")], loc="upper left", bbox_to_anchor=(1.0, 1.0),
              fontsize=8)  # outside the axes: inside, it would hide the bars of the first row
    return fig


def _thumbnail(ax, jpeg: bytes, x: float, y: float) -> None:
    import cv2
    import numpy as np
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return
    zoom = 36.0 / max(1, image.shape[0])  # about 36 px tall whatever the crop's size
    box = AnnotationBbox(OffsetImage(image[:, :, ::-1], zoom=zoom), (x, y), box_alignment=(0.5, 0.0), frameon=False,
                         pad=0.0)
    ax.add_artist(box)


def thumbnails(store: Store, found: list[Sighting], limit: int = 40) -> dict[str, bytes]:
    """JPEGs of the sightings' thumbnail crops (at most `limit`, the first ones in time order)."""
    keys = [s.thumb for s in found if s.thumb][:limit]
    return {c.key: c.jpeg for c in store.get_crops(keys, jpeg=True) if c.jpeg}


def sighting_dict(s: Sighting) -> dict:
    return {"identity": s.identity, "source": s.source, "camera": s.camera, "video": s.video,
            "video_id": s.video_id, "track": s.track, "first_frame": s.first_frame, "last_frame": s.last_frame,
            "start_s": s.start_s, "end_s": s.end_s, "crops": s.crops, "score": s.score,
            "start_time": clock.iso(s.time), "end_time": clock.iso(s.end_time), "thumbnail": s.thumb,
            "visual_score": s.visual_score, "st": s.st,
            "frames": [f for f, _ in s.boxes], "boxes": [b.as_list() for _, b in s.boxes]}


def sightings_json(found: list[Sighting], identity: str | None = None, threshold: float | None = None) -> dict:
    """{"identity", "threshold", "cameras", "sightings": [...]}; each sighting has the CSV columns plus parallel
    "frames" and "boxes" ([x, y, w, h] in pixels)."""
    name = identity if identity is not None else (found[0].identity if found else None)
    return {"identity": name, "threshold": threshold, "cameras": sorted({s.camera for s in found}),
            "sightings": [sighting_dict(s) for s in found]}


def sightings_csv(found: list[Sighting], path: str | Path) -> Path:
    """One row per sighting, CSV_COLUMNS (empty cells for unknown seconds and for enrolled scores)."""
    path = Path(path)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for s in found:
            row = sighting_dict(s)
            w.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return path


def write_sightings(found: list[Sighting], path: str | Path, identity: str | None = None,
                    threshold: float | None = None) -> Path:
    """Save as .csv (sightings_csv) or .json (sightings_json), by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return sightings_csv(found, path)
    if suffix == ".json":
        path.write_text(json.dumps(sightings_json(found, identity, threshold), indent=1))
        return path
    raise InputError(f"a sightings export must end in .csv or .json, got {path.name!r}")
