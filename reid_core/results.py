"""Result lists after the decision: refined without recomputing (threshold, identity, frames, length), as the
`--json` contracts, and exported as CSV or JSON."""
from __future__ import annotations

import json
from pathlib import Path

from reid_core import clock
from reid_core.errors import InputError
from reid_core.fusion import FACE_THRESHOLD
from reid_core.matching import SearchHit, TrackDecision
from reid_core.store import Store, VideoRecord
from reid_core.types import Match

UNKNOWN = "unknown"


def refine(decisions: list[TrackDecision], threshold: float | None = None, identity: str | None = None,
           from_frame: int | None = None, to_frame: int | None = None, min_crops: int = 0) -> list[TrackDecision]:
    """A result list re-decided at another threshold (no recomputation: best_match and score are kept) and
    filtered: identity (a name, or "unknown"), frame range (tracks cut to it; tracks outside dropped), track length."""
    out = []
    for d in decisions:
        m = d.match
        if threshold is not None:
            m = Match(m.best_match if m.best_match is not None and m.score >= threshold else None, m.best_match,
                      m.score, threshold)
        if identity:
            if (identity == UNKNOWN and m.identity is not None) or (identity != UNKNOWN and m.identity != identity):
                continue
        keep = [i for i, f in enumerate(d.frames) if (from_frame is None or f >= from_frame)
                and (to_frame is None or f <= to_frame)]
        if len(keep) < max(1, min_crops):
            continue
        out.append(TrackDecision(d.track_id, m, [d.frames[i] for i in keep], [d.boxes[i] for i in keep],
                                 [d.keys[i] for i in keep] if len(d.keys) == len(d.frames) else d.keys, d.segment,
                                 d.video_id, d.camera, d.visual_score, d.st, d.evidence, d.face_score, d.face_keys))
    return out


def decisions_json(decisions: list[TrackDecision], threshold: float, video: VideoRecord | None = None) -> dict:
    """The `reid identify --json` contract. With the stored video the decisions are of, it also says where and
    when: top-level "video" (path), "video_id", "camera", "fps", "start" (the wall clock of frame 0, ISO-8601 UTC;
    None when unknown), and per track "camera", "first_s", "last_s" (frame / fps; None when the container gives no
    frame rate), and where the start is known "first_time", "last_time" (wall clock, ISO-8601). Where camera timing (st)
    moved a score, the track also has "visual_score" (the plain cosine) and "st" (why). Where a face on the track
    took part, it has "evidence" ("face", "body" or "face+body": what decided) and "face_score" (face cosine to
    best_match, None if that identity has no face), and the top level "face_threshold"."""
    out: dict = {"threshold": threshold}
    if video is not None:
        other = {d.video_id for d in decisions if d.video_id and d.video_id != video.video_id}
        if other:
            raise InputError(f"the decisions are of video {sorted(other)[0][:12]}, not of {video.path} "
                             f"({video.video_id[:12]})")
        out.update({"video": video.path, "video_id": video.video_id, "camera": video.camera, "fps": video.fps,
                    "start": clock.iso(video.start)})
    tracks = []
    for d in decisions:
        t = {"track_id": d.track_id, "segment": d.segment, "identity": d.match.identity,
             "best_match": d.match.best_match, "score": round(d.match.score, 4),
             "frames": [int(f) for f in d.frames], "boxes": [b.as_list() for b in d.boxes]}
        if video is not None:
            t["camera"] = d.camera or video.camera
            t["first_s"] = _seconds(d.frames[0], video.fps) if d.frames else None
            t["last_s"] = _seconds(d.frames[-1], video.fps) if d.frames else None
            if video.start is not None and d.frames:
                t["first_time"] = clock.iso(clock.frame_time(video.start, video.fps, d.frames[0]))
                t["last_time"] = clock.iso(clock.frame_time(video.start, video.fps, d.frames[-1]))
        if d.visual_score is not None:
            t["visual_score"] = round(d.visual_score, 4)
            t["st"] = d.st
        if d.face_keys:  # a face on the track took part (reid_core/fusion.py); else the contract as it was
            t["evidence"] = d.evidence
            t["face_score"] = None if d.face_score is None else round(d.face_score, 4)
            out["face_threshold"] = FACE_THRESHOLD
        tracks.append(t)
    out["tracks"] = tracks
    return out


def _seconds(frame: int, fps: float) -> float | None:
    return round(frame / fps, 3) if fps and fps > 0 else None


def filter_hits(hits: list[SearchHit], min_score: float | None = None, camera: str | None = None,
                video_id: str | None = None, from_frame: int | None = None,
                to_frame: int | None = None) -> list[SearchHit]:
    """Search results narrowed by similarity, camera, video (id or id prefix) and frame range."""
    return [h for h in hits if (min_score is None or h.score >= min_score) and (not camera or h.camera == camera)
            and (not video_id or h.video_id.startswith(video_id))
            and (from_frame is None or h.frame >= from_frame) and (to_frame is None or h.frame <= to_frame)]


def hits_json(hits: list[SearchHit], store: Store | None = None) -> dict:
    """The `reid search-image --json` contract; "time" is the hit's wall clock (ISO-8601; only where its video's
    start is known), and where camera timing moved a score, "visual_score" and "st" say from what and why."""
    videos = {v.video_id: v for v in store.videos()} if store is not None else {}
    out = []
    for h in hits:
        v = videos.get(h.video_id)
        r = {"key": h.key, "video_id": h.video_id, "video": v.path if v else None, "camera": h.camera,
             "frame": h.frame, "box": h.box.as_list(), "track_id": h.track_id, "score": round(h.score, 4)}
        if v is not None and v.start is not None:
            r["time"] = clock.iso(clock.frame_time(v.start, v.fps, h.frame))
        if h.visual_score is not None:
            r.update({"visual_score": round(h.visual_score, 4), "st": h.st})
        out.append(r)
    return {"results": out}


def export(result: dict, path: str | Path) -> Path:
    """Save a result list (identify's {"tracks": ...} or search's {"results": ...}) as .json or .csv."""
    import csv

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise InputError(f"export file must end in .csv or .json, got {path.name!r}")
    if suffix == ".json":
        path.write_text(json.dumps(result, indent=1))
        return path
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        if "tracks" in result:
            # the columns after "crops" came later; tools reading the first nine by position keep working
            w.writerow(["track_id", "segment", "identity", "best_match", "score", "threshold", "first_frame",
                        "last_frame", "crops", "video", "video_id", "camera", "first_s", "last_s", "boxes"])
            for t in result["tracks"]:
                w.writerow([t["track_id"], t.get("segment", 0), t["identity"] or UNKNOWN, t["best_match"] or "",
                            t["score"],
                            result.get("threshold", ""), t["frames"][0] if t["frames"] else "",
                            t["frames"][-1] if t["frames"] else "", len(t["frames"]),
                            result.get("video") or "", result.get("video_id") or "",
                            t.get("camera") or result.get("camera") or "", _blank(t.get("first_s")),
                            _blank(t.get("last_s")), _boxes_cell(t["frames"], t.get("boxes", []))])
        else:
            w.writerow(["rank", "score", "camera", "video_id", "video", "frame", "track_id", "box", "key"])
            for i, h in enumerate(result["results"], 1):
                w.writerow([i, h["score"], h["camera"], h["video_id"], h.get("video") or "", h["frame"],
                            h["track_id"], " ".join(str(v) for v in h["box"]), h["key"]])
    return path


def _blank(value) -> object:
    return "" if value is None else value


def _boxes_cell(frames: list[int], boxes: list[list[float]]) -> str:
    """frame:x,y,w,h;frame:x,y,w,h... (one CSV cell per track, so the table stays one row per track)."""
    return ";".join(f"{f}:" + ",".join(f"{v:g}" for v in b) for f, b in zip(frames, boxes))
