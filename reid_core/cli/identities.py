"""`reid enroll`, `reid verify`, `reid identify`, `reid search-image`, `reid gallery ...`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from reid_core import checks
from reid_core.cli.common import JsonOpt, StOpt, StoreOpt, emit, settings, store_path, usage_error
from reid_core.errors import InputError
from reid_core.types import Box

if TYPE_CHECKING:
    from reid_core.matching import AggregationMethod

VideoArg = Annotated[Path, typer.Argument(help="Video file.")]
NameArg = Annotated[str, typer.Argument(help="Identity name, as `reid gallery list` shows it.")]
FromOpt = Annotated[int, typer.Option("--from-frame", help="First frame, 0-based, inclusive.")]
ToOpt = Annotated[int | None, typer.Option("--to-frame", help="Last frame, inclusive (default: end).")]
ThresholdOpt = Annotated[float | None, typer.Option(help="Similarity needed for a match (cosine, 0..1; default: "
                                                           "the embedder's calibrated threshold, see `reid info`).")]

gallery_app = typer.Typer(help="List, rename, merge and delete enrolled identities.")


def register(app: typer.Typer) -> None:
    app.command("enroll")(enroll_cmd)
    app.command("verify")(verify_cmd)
    app.command("identify")(identify_cmd)
    app.command("search-image")(search_image_cmd)
    app.add_typer(gallery_app, name="gallery")


def _store(store):
    from reid_core.store import Store

    return Store(store_path(store))


def enroll_cmd(video: Annotated[Path | None, typer.Argument(
                   help="Video file (or give --photo instead).", show_default=False)] = None,
               name: Annotated[str, typer.Option(help="Identity name.")] = "",
               from_frame: FromOpt = 0, to_frame: ToOpt = None,
               at_frame: Annotated[int | None, typer.Option(
                   "--at-frame", help="Frame where you pick the person.")] = None,
               box: Annotated[str | None, typer.Option(help="x,y,w,h of the person at --at-frame.")] = None,
               track: Annotated[str | None, typer.Option(
                   help="Pick the person by a stored track instead: its label as `reid identify` or `reid gallery "
                        "show` prints it (12, or 12.2 for the 2nd segment of a split track). The footage must be in "
                        "the store already; nothing is ingested.")] = None,
               camera: Annotated[str | None, typer.Option(help="Camera/source name.")] = None,
               force: Annotated[bool, typer.Option("--force", help="Add to an existing identity even if the person "
                                                   "does not look like it.")] = False,
               photo: Annotated[Path | None, typer.Option(
                   help="Enroll from the face in this photo (JPEG/PNG) instead of a video: no body needed. With "
                        "several faces the largest is enrolled (crop the photo to pick another).")] = None,
               store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Make (or add to) an identity from the person picked in a video: their whole visit, nobody else; or from
    the face in a photo (--photo).

    Pick the person with --at-frame and --box, or with --track; with neither, the range must hold one person."""
    from reid_core.enrollment import enroll
    from reid_core.names import validate_camera, validate_new_name

    if photo is None and video is None:
        usage_error("missing argument VIDEO (or give --photo FILE to enroll from a face photo)")
    if not name:
        usage_error("missing option --name")
    if photo is not None:
        if video is not None or at_frame is not None or box is not None or track is not None \
                or from_frame or to_frame is not None or camera is not None:
            usage_error("--photo enrolls from a photo: give no video, range, --at-frame/--box, --track or --camera")
        _enroll_photo(photo, name, store, json_out)
        return
    assert video is not None  # checked above

    if track is not None and (at_frame is not None or box is not None):
        usage_error("--track and --at-frame/--box both pick the person; give one of them")
    if (at_frame is None) != (box is None):
        usage_error("--at-frame and --box go together")
    if track is not None:
        from reid_core.enrollment import parse_track

        parse_track(track)
    checks.frame_range(from_frame, to_frame)
    checks.frame(at_frame, "--at-frame")
    camera = validate_camera(camera) if camera is not None else None
    s = _store(store)
    if s.identity(name) is None:  # a new identity: refuse a reserved or look-alike name before the ingest
        validate_new_name(name, [i.name for i in s.identities()])
    r = enroll(s, video, name, from_frame, to_frame, at_frame, parse_box(box) if box else None, camera,
               force=force, track=track, settings=settings(store))
    out = {"name": r.identity.name, "added_crops": len(r.added_keys), "total_crops": len(r.identity.keys),
           "track_ids": r.track_ids, "segments": r.segments, "frames": list(r.frame_span),
           "visit_share": round(r.visit_share, 3), "left_out_crops": r.left_out, "warnings": r.warnings,
           "sample_keys": r.sample_keys}
    emit(out, json_out, _enrolled_text)


def _enroll_photo(photo: Path, name: str, store, json_out: bool) -> None:
    from reid_core.face_evidence import enroll_photo

    data = checks.image_file(photo)
    r = enroll_photo(_store(store), data, name, f"photo {photo.name}")
    out = {"name": r.identity.name, "face_box": r.box.as_list(), "faces_found": r.faces_found,
           "face_quality": r.face.quality, "total_faces": len(r.identity.faces), "total_crops": len(r.identity.keys),
           "warnings": r.warnings}
    emit(out, json_out, lambda o: "\n".join(
        [f"enrolled {o['name']} from the face at {','.join(str(int(v)) for v in o['face_box'])} (x,y,w,h) of "
         f"{photo.name}; {o['total_faces']} face photo(s), {o['total_crops']} body crops in total"]
        + [f"warning: {w}" for w in o["warnings"]]))


def _label(t: dict) -> str:
    return f"{t['track_id']}.{t['segment']}" if t.get("segment") else str(t["track_id"])


def _enrolled_text(o: dict) -> str:
    lines = [f"enrolled {o['name']}: +{o['added_crops']} crops, frames {o['frames'][0]}..{o['frames'][1]} "
             f"({o['visit_share']:.0%} of those frames), from segment(s) {', '.join(o['segments'])}; "
             f"{o['total_crops']} crops in total"]
    if o["left_out_crops"]:
        lines.append(f"left out {len(o['left_out_crops'])} crop(s) that do not look like the rest")
    lines += [f"warning: {w}" for w in o["warnings"]]
    lines.append("check them: reid gallery show NAME; remove wrong ones: reid gallery remove NAME KEY|TRACK ...")
    return "\n".join(lines)


def verify_cmd(video: VideoArg, claim: Annotated[str, typer.Option(help="Claimed identity name.")],
               from_frame: FromOpt = 0, to_frame: ToOpt = None, threshold: ThresholdOpt = None,
               fail_on_no_match: Annotated[bool, typer.Option(
                   "--fail-on-no-match", help="Exit with code 1 when the claim is not matched (0 on a match; "
                                              "mistakes stay 2), for scripts.")] = False,
               store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Is the claimed identity in this footage? Match or no match, with the score and threshold.

    The exit code is 0 either way (the answer is in the output), unless --fail-on-no-match is given."""
    threshold = checks.score(threshold) if threshold is not None else None  # before the models are imported
    from reid_core.matching import verify

    r = verify(_store(store), video, claim, from_frame, to_frame, threshold, settings=settings(store))
    out = {"claim": r.claim, "match": r.match, "score": round(r.score, 4), "threshold": r.threshold,
           "track_id": r.track_id}
    if r.face_score is not None or r.evidence != "body":  # the claim has a face enrolled: say what decided
        out.update({"evidence": r.evidence, "face_score": None if r.face_score is None else round(r.face_score, 4),
                    "body_score": None if r.body_score is None else round(r.body_score, 4),
                    "face_threshold": r.face_threshold})

    def human(o):
        line = (f"{'MATCH' if o['match'] else 'NO MATCH'}: {o['claim']} score {o['score']:.3f} (threshold "
                f"{o['threshold']:.2f}, track {o['track_id']})")
        if "evidence" in o:
            face = "no face" if o["face_score"] is None else f"face {o['face_score']:.3f}"
            line += f"; decided by {o['evidence']} ({face}, face threshold {o['face_threshold']:.2f})"
        return line

    emit(out, json_out, human)
    if fail_on_no_match and not r.match:
        raise typer.Exit(1)


def identify_cmd(video: VideoArg, from_frame: FromOpt = 0, to_frame: ToOpt = None,
                 threshold: ThresholdOpt = None,
                 aggregate: Annotated[str, typer.Option(help="mean or quality (score x height weighted).")] = "mean",
                 identity: Annotated[str | None, typer.Option(
                     help="Only tracks named this identity ('unknown' for the unnamed).")] = None,
                 min_crops: Annotated[int, typer.Option("--min-crops", help="Drop tracks shorter than this.")] = 0,
                 export: Annotated[Path | None, typer.Option(
                     help="Also write the result list to .csv or .json")] = None,
                 st: StOpt = None,
                 store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Name every person track in the footage, or call it unknown (open set)."""
    threshold = checks.score(threshold) if threshold is not None else None
    checks.count(min_crops, "--min-crops", minimum=0)
    if export is not None:  # before the work: a typo in the folder must not cost the whole run
        export = checks.export_path(export)
    from reid_core.matching import identify
    from reid_core.results import decisions_json, refine
    from reid_core.results import export as write_export

    cfg = settings(store)
    threshold = cfg.threshold if threshold is None else threshold
    method = cast("AggregationMethod", aggregate)  # any other value: aggregate() refuses it, naming the choices
    decisions = identify(_store(store), video, from_frame, to_frame, threshold, method, settings=cfg, st=st)
    out = decisions_json(refine(decisions, identity=identity, min_crops=min_crops), threshold,
                         _store(store).video(decisions[0].video_id) if decisions else None)
    if export:
        _write_export(write_export, out, export)

    def human(o):
        lines = [f"threshold {o['threshold']:.2f}"]
        lines += [f"track {_label(t):>7}  frames {t['frames'][0]}..{t['frames'][-1]}  "
                  f"{t['identity'] or 'unknown':20s} (best {t['best_match']} {t['score']:.3f})" for t in o["tracks"]]
        return "\n".join(lines)

    emit(out, json_out, human)


def search_image_cmd(image: Annotated[Path, typer.Argument(help="A person crop (JPEG/PNG).")],
                     top_k: Annotated[int, typer.Option("--top-k", help="How many tracks to return.")] = 10,
                     min_score: Annotated[float | None, typer.Option("--min-score", help="Similarity floor.")] = None,
                     camera: Annotated[str | None, typer.Option(help="Only this camera/source.")] = None,
                     video_id: Annotated[str | None, typer.Option(
                         "--video-id", help="Only this video (id prefix).")] = None,
                     from_frame: Annotated[int | None, typer.Option(
                         "--from-frame", help="Only tracks seen at or after this frame.")] = None,
                     to_frame: Annotated[int | None, typer.Option(
                         "--to-frame", help="Only tracks seen at or before this frame.")] = None,
                     export: Annotated[Path | None, typer.Option(
                         help="Also write the results to .csv or .json")] = None,
                     st: StOpt = None,
                     store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Find the stored tracks that look most like the person in IMAGE (best crop of each track, cosine; with
    camera timing, re-scored by their timing relative to the best hit)."""
    top_k = checks.count(top_k, "--top-k")
    if min_score is not None:
        min_score = checks.score(min_score, "--min-score")
    checks.frame_range(from_frame, to_frame)
    if export is not None:
        export = checks.export_path(export)
    data = checks.image_file(image)
    from reid_core.matching import search_image
    from reid_core.results import export as write_export
    from reid_core.results import filter_hits, hits_json

    s = _store(store)
    hits = filter_hits(search_image(s, data, None, settings(store), st), min_score, camera, video_id, from_frame,
                       to_frame)
    out = hits_json(hits[:top_k], s)
    if export:
        _write_export(write_export, out, export)
    emit(out, json_out, lambda o: "\n".join(f"{r['score']:.3f}  track {r['track_id']}  {r['camera']} frame "
                                            f"{r['frame']}" + (f"  ({r['st']})" if r.get("st") else "")
                                            for r in o["results"]) or "no stored crops match")


def _write_export(write, result: dict, path: Path) -> None:
    try:
        write(result, path)
    except OSError as e:  # permissions, a full disk; the ingest is kept, so running again costs only the matching
        raise InputError(f"--export: cannot write {str(path)!r}: {e.strerror or e}") from None


@gallery_app.command("list")
def gallery_list(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Identities with their crop and track counts, and videos grouped by camera."""
    s = _store(store)
    idents = []
    for i in s.identities():
        crops = s.get_crops(i.keys, jpeg=False) if i.keys else []
        idents.append({"name": i.name, "crops": len(i.keys), "face_photos": len(i.faces),
                       "tracks": len({c.track_id for c in crops}),
                       "videos": sorted({c.video_id for c in crops}), "thumbnail_key": i.keys[0] if i.keys else None})
    cameras: dict[str, list] = {}
    for v in s.videos():
        cameras.setdefault(v.camera, []).append({"video_id": v.video_id, "path": v.path, "frames": v.frame_count})
    out = {"identities": idents, "cameras": cameras}
    emit(out, json_out, lambda o: "\n".join([f"{i['name']}: {i['crops']} crops, {i['tracks']} tracks"
                                             + (f", {i['face_photos']} face photo(s)" if i["face_photos"] else "")
                                             for i in o["identities"]] or ["no identities enrolled"]
                                            + [f"camera {c}: {len(v)} video(s)" for c, v in o["cameras"].items()]))


@gallery_app.command("rename")
def gallery_rename(old: Annotated[str, typer.Argument(help="The identity's current name.")],
                   new: Annotated[str, typer.Argument(help="Its new name.")],
                   store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Rename an identity (its crops and features stay as they are)."""
    ident = _store(store).rename_identity(old, new)
    emit({"renamed": old, "to": ident.name}, json_out, lambda o: f"renamed {o['renamed']} -> {o['to']}")


@gallery_app.command("merge")
def gallery_merge(sources: Annotated[list[str], typer.Argument(help="Identities to merge into --into.")],
                  into: Annotated[str, typer.Option(help="Target identity.")],
                  store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Merge identities that are the same person into one (--into); the merged names are gone afterwards."""
    ident = _store(store).merge_identities(sources, into)
    emit({"merged": sources, "into": ident.name, "crops": len(ident.keys)}, json_out,
         lambda o: f"merged {', '.join(o['merged'])} into {o['into']} ({o['crops']} crops)")


@gallery_app.command("show")
def gallery_show(name: NameArg, store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """An identity's segments: track, frames and crop keys, so wrong ones can be removed."""
    from reid_core.matching import identity_segments

    s = _store(store)
    ident = s.identity(name)
    if ident is None:
        raise InputError(f"no identity named {name!r}")
    segs = [{"segment": t.label, "video_id": t.video_id, "camera": t.camera, "frames": [t.frames[0], t.frames[-1]],
             "crops": len(t.keys), "keys": t.keys} for t, _ in identity_segments(s, ident, settings(store).segments)]
    emit({"name": ident.name, "segments": segs}, json_out, lambda o: "\n".join(
        [f"{o['name']}: {len(o['segments'])} segment(s)"] + [
            f"  {g['segment']:>6}  {g['camera']}  frames {g['frames'][0]}..{g['frames'][1]}  {g['crops']} crops  "
            f"first key {g['keys'][0]}" for g in o["segments"]]))


@gallery_app.command("remove")
def gallery_remove(name: NameArg, items: Annotated[list[str], typer.Argument(
        help="Crop keys, or segments as shown by `reid gallery show` (12 = a whole track, 12.2 = its 2nd segment).")],
        store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Take wrong crops or segments out of an identity (the crops stay in the store for other uses)."""
    from reid_core.enrollment import remove_from_identity

    left, removed = remove_from_identity(_store(store), name, items)
    emit({"name": left.name, "removed_crops": removed, "total_crops": len(left.keys)}, json_out,
         lambda o: f"removed {o['removed_crops']} crop(s) from {o['name']}; {o['total_crops']} left")


@gallery_app.command("delete")
def gallery_delete(name: NameArg, store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Delete an identity and its enrolled crops and features from the store."""
    n = _store(store).delete_identity(name)
    emit({"deleted": name, "crops_removed": n}, json_out, lambda o: f"deleted {o['deleted']} ({n} crops removed)")


def parse_box(text: str) -> Box:
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--box must be x,y,w,h in pixels (e.g. 360,190,40,86); got {text!r}") from None
    if w < 0 or h < 0:
        raise InputError("--box width and height must be positive")
    return Box(x, y, w, h)
