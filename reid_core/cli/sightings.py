"""`reid timeline` (where and when an identity was seen), `reid clip-identity` and `reid clip-video` (annotated
MP4 clips of an identity's sightings, or of an identify result)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reid_core import checks
from reid_core.cli.common import JsonOpt, StoreOpt, emit, settings, store_path
from reid_core.errors import InputError

NameArg = Annotated[str, typer.Argument(help="Enrolled identity name (see `reid gallery list`).")]
ThresholdOpt = Annotated[float | None, typer.Option(
    help="Similarity a stored track needs to count as this identity (cosine, 0..1; default: the embedder's "
         "calibrated threshold, see `reid info`).")]
EnrolledOnlyOpt = Annotated[bool, typer.Option(
    "--enrolled-only", help="Only the identity's own enrolled crops, no matched tracks.")]
OutOpt = Annotated[Path, typer.Option("--out", help="MP4 file to write (the name must end in .mp4).")]


def register(app: typer.Typer) -> None:
    app.command("timeline")(timeline_cmd)
    app.command("clip-identity")(clip_identity_cmd)
    app.command("clip-video")(clip_video_cmd)


def _store(store):
    from reid_core.store import Store

    return Store(store_path(store))


def timeline_cmd(name: NameArg, threshold: ThresholdOpt = None, enrolled_only: EnrolledOnlyOpt = False,
                 plot: Annotated[Path | None, typer.Option(
                     help="Also draw the timeline (one row per camera/video) into this .png file.")] = None,
                 export: Annotated[Path | None, typer.Option(
                     help="Also write the sightings to .csv or .json.")] = None,
                 store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Where and when NAME was seen: each camera, video and track, with frames and seconds."""
    threshold = checks.score(threshold) if threshold is not None else None
    if plot is not None:
        plot = checks.output_path(plot, (".png",), "--plot")
    if export is not None:
        export = checks.export_path(export)
    from reid_core.sightings import sightings, sightings_json, timeline_figure, write_sightings

    cfg = settings(store)
    threshold = cfg.threshold if threshold is None else threshold
    found = sightings(_store(store), name, threshold, include_matches=not enrolled_only, settings=cfg)
    out = sightings_json(found, found[0].identity if found else name, threshold)
    try:
        if export is not None:
            write_sightings(found, export, out["identity"], threshold)
            out["export"] = str(export)
        if plot is not None:
            timeline_figure(found, f"{out['identity']}: where and when seen").savefig(plot, dpi=120)
            out["plot"] = str(plot)
    except OSError as e:  # permissions, a full disk
        raise InputError(f"cannot write {e.filename or 'the file'}: {e.strerror or e}") from None
    emit(out, json_out, _timeline_text)


def _timeline_text(o: dict) -> str:
    rows = o["sightings"]
    if not rows:
        return f"{o['identity']}: not seen (no enrolled crops, no matching track)"
    lines = [f"{o['identity']}: {len(rows)} sighting(s) on {len(o['cameras'])} camera(s)",
             f"{'camera':16} {'video':24} {'track':>7} {'source':8} {'frames':>13} {'seconds':>15}"]
    for r in rows:
        seconds = "" if r["start_s"] is None else f"{r['start_s']:.1f}-{r['end_s']:.1f}"
        score = f"  {r['score']:.2f}" if r["score"] is not None else ""
        lines.append(f"{r['camera'][:16]:16} {Path(r['video']).name[:24]:24} {r['track']:>7} {r['source']:8} "
                     f"{r['first_frame']:>6}..{r['last_frame']:<5} {seconds:>15}{score}")
    for key in ("export", "plot"):
        if key in o:
            lines.append(f"wrote {o[key]}")
    return "\n".join(lines)


def clip_identity_cmd(name: NameArg, out: OutOpt, threshold: ThresholdOpt = None,
                      enrolled_only: EnrolledOnlyOpt = False,
                      pad_frames: Annotated[int, typer.Option(
                          "--pad-frames", help="Frames shown before and after each sighting.")] = 0,
                      max_frames: Annotated[int | None, typer.Option(
                          "--max-frames", help="Stop the clip after this many frames (default: all).")] = None,
                      store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """An MP4 of NAME's sightings one after another, the person boxed, camera and time stamped."""
    threshold = checks.score(threshold) if threshold is not None else None
    checks.count(pad_frames, "--pad-frames", minimum=0)
    if max_frames is not None:
        checks.count(max_frames, "--max-frames")
    out = checks.output_path(out, (".mp4",), "--out")
    from reid_core.annotate import sightings_clip
    from reid_core.sightings import sightings

    s = _store(store)
    found = sightings(s, name, threshold, include_matches=not enrolled_only, settings=settings(store))
    if not found:
        raise InputError(f"{name} was not seen anywhere: nothing to put in a clip")
    r = sightings_clip(s, found, out, pad_frames, max_frames)
    result = {"identity": found[0].identity, "out": str(r.path), "frames": r.frames,
              "sightings": len(found) - len(r.skipped), "skipped": r.skipped}
    emit(result, json_out, lambda o: "\n".join(
        [f"wrote {o['out']}: {o['frames']} frames from {o['sightings']} sighting(s) of {o['identity']}"]
        + [f"skipped {reason}" for reason in o["skipped"]]))


def clip_video_cmd(video: Annotated[Path, typer.Argument(help="Video file.")], out: OutOpt,
                   from_frame: Annotated[int, typer.Option(
                       "--from-frame", help="First frame, 0-based, inclusive.")] = 0,
                   to_frame: Annotated[int | None, typer.Option(
                       "--to-frame", help="Last frame, inclusive (default: end).")] = None,
                   threshold: ThresholdOpt = None,
                   store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """An MP4 of the identify result on VIDEO: every track boxed, named (green) or unknown (amber)."""
    threshold = checks.score(threshold) if threshold is not None else None
    checks.frame_range(from_frame, to_frame)
    out = checks.output_path(out, (".mp4",), "--out")
    from reid_core.annotate import export_clip, overlays_for_decisions
    from reid_core.matching import identify
    from reid_core.video import check_range, probe

    info = probe(video)
    start, stop = check_range(info, from_frame, to_frame)
    s = _store(store)
    cfg = settings(store)
    threshold = cfg.threshold if threshold is None else threshold
    decisions = identify(s, video, start, stop, threshold, settings=cfg)
    record = s.video(info.video_id)
    path = export_clip(video, overlays_for_decisions(decisions), out, start, stop,
                       caption=record.camera if record else "")
    named = sorted({d.match.identity for d in decisions if d.match.identity})
    result = {"out": str(path), "frames": stop - start + 1, "from_frame": start, "to_frame": stop,
              "tracks": len(decisions), "identities": named, "threshold": threshold}
    emit(result, json_out, lambda o: f"wrote {o['out']}: frames {o['from_frame']}..{o['to_frame']}, "
                                     f"{o['tracks']} track(s), named: {', '.join(o['identities']) or 'nobody'}")
