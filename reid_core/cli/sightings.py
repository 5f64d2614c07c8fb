"""`reid sightings` and `reid timeline` (where and when an identity or an image was seen), `reid st learn|show`
(the camera-timing model), `reid clip-identity` and `reid clip-video` (annotated MP4 clips of an identity's
sightings, or of an identify result)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reid_core import checks
from reid_core.cli.common import JsonOpt, StOpt, StoreOpt, emit, settings, store_path
from reid_core.errors import InputError

NameArg = Annotated[str, typer.Argument(help="Enrolled identity name (see `reid gallery list`).")]
ThresholdOpt = Annotated[float | None, typer.Option(
    help="Similarity a stored track needs to count as this identity (cosine, 0..1; default: the embedder's "
         "calibrated threshold, see `reid info`).")]
EnrolledOnlyOpt = Annotated[bool, typer.Option(
    "--enrolled-only", help="Only the identity's own enrolled crops, no matched tracks.")]
OutOpt = Annotated[Path, typer.Option("--out", help="MP4 file to write (the name must end in .mp4).")]

st_app = typer.Typer(help="The camera-timing (spatial-temporal) model of the store.", no_args_is_help=False)


def register(app: typer.Typer) -> None:
    app.command("sightings")(sightings_cmd)
    app.add_typer(st_app, name="st")
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


def sightings_cmd(name: Annotated[str | None, typer.Argument(
                      help="Enrolled identity name (or give --image instead).", show_default=False)] = None,
                  image: Annotated[Path | None, typer.Option(
                      help="Find this person crop (JPEG/PNG) instead of an enrolled identity.")] = None,
                  threshold: ThresholdOpt = None, enrolled_only: EnrolledOnlyOpt = False, st: StOpt = None,
                  csv: Annotated[Path | None, typer.Option("--csv", help="Also write the sightings to this .csv.")]
                  = None,
                  plot: Annotated[Path | None, typer.Option(
                      help="Also draw the timeline (time x camera, thumbnails) into this .png file.")] = None,
                  store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Every sighting of NAME (or of the person in --image) across all videos and cameras, in time order: camera,
    wall-clock time, time in the video, frames, score, thumbnail (crop key)."""
    if (name is None) == (image is None):
        raise InputError("give an identity NAME or an --image, not both and not neither")
    threshold = checks.score(threshold) if threshold is not None else None
    if csv is not None:
        csv = checks.output_path(csv, (".csv",), "--csv")
    if plot is not None:
        plot = checks.output_path(plot, (".png",), "--plot")
    from reid_core.sightings import (
        image_sightings,
        sightings,
        sightings_json,
        thumbnails,
        timeline_figure,
        write_sightings,
    )

    cfg = settings(store)
    threshold = cfg.threshold if threshold is None else threshold
    s = _store(store)
    if image is not None:
        found = image_sightings(s, checks.image_file(image), threshold, cfg, st, label=image.name)
        label = image.name
    else:
        assert name is not None  # one of the two, checked above
        found = sightings(s, name, threshold, include_matches=not enrolled_only, settings=cfg, st=st)
        label = found[0].identity if found else name
    out = sightings_json(found, label, threshold)
    try:
        if csv is not None:
            write_sightings(found, csv, label, threshold)
            out["csv"] = str(csv)
        if plot is not None:
            timeline_figure(found, f"{label}: where and when seen", thumbnails(s, found)).savefig(plot, dpi=120)
            out["plot"] = str(plot)
    except OSError as e:  # permissions, a full disk
        raise InputError(f"cannot write {e.filename or 'the file'}: {e.strerror or e}") from None
    emit(out, json_out, _sightings_text)


def _sightings_text(o: dict) -> str:
    rows = o["sightings"]
    if not rows:
        return f"{o['identity']}: not seen"
    lines = [f"{o['identity']}: {len(rows)} sighting(s) on {len(o['cameras'])} camera(s), in time order",
             f"{'camera':14} {'wall clock (UTC)':24} {'in video (s)':>13} {'frames':>13} {'score':>6} "
             f"{'thumbnail':30} why"]
    for r in rows:
        seconds = "" if r["start_s"] is None else f"{r['start_s']:.1f}-{r['end_s']:.1f}"
        score = "" if r["score"] is None else f"{r['score']:.2f}"
        lines.append(f"{r['camera'][:14]:14} {r['start_time'] or 'unknown':24} {seconds:>13} "
                     f"{r['first_frame']:>6}..{r['last_frame']:<5} {score:>6} {r['thumbnail'][-30:]:30} "
                     f"{r['source'] if not r['st'] else r['st']}")
    for key in ("csv", "plot"):
        if key in o:
            lines.append(f"wrote {o[key]}")
    return "\n".join(lines)


@st_app.command("learn")
def st_learn_cmd(min_score: Annotated[float | None, typer.Option(
                     "--min-score", help="Cosine a cross-camera match needs to teach the model (default: the "
                                         "embedder's decision threshold).")] = None,
                 rounds: Annotated[int, typer.Option(help="Match, learn, re-score rounds.")] = 3,
                 store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Learn the store's camera-timing model without labels, from its own confident cross-camera matches (videos
    need a start time on one clock: `reid ingest --start`)."""
    min_score = checks.score(min_score, "--min-score") if min_score is not None else None
    checks.count(rounds, "--rounds")
    from reid_core.st_learn import learn_from_store

    fit = learn_from_store(_store(store), settings(store), min_score, rounds)
    out = {"path": str(fit.path), "sightings": fit.sightings, "pairs": fit.pairs, "rounds": fit.rounds,
           **_model_summary(fit.model)}
    emit(out, json_out, lambda o: f"learned camera timing from {o['pairs']} confident match(es) among "
                                  f"{o['sightings']} sightings ({o['rounds']} round(s)): "
                                  + (", ".join(f"{p['src']} -> {p['dst']} x{p['count']}" for p in o["pairs_seen"])
                                     or "no transition") + f"; saved {o['path']}")


@st_app.command("show")
def st_show_cmd(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """The store's camera-timing model: camera pairs, how many transitions, typical gap, constants."""
    from reid_core.st_store import model_file, store_model

    s = _store(store)
    model = store_model(s)
    if model is None:
        raise InputError(f"the store {s.path} has no camera-timing model", cli_hint="learn one with `reid st learn`")
    out = {"path": str(model_file(s)), **_model_summary(model)}
    emit(out, json_out, lambda o: "\n".join(
        [f"camera timing ({o['source']}, {o['path']}): p_ref {o['p_ref']:.3g}; constants "
         + ", ".join(f"{k} {v:g}" for k, v in o["params"].items())]
        + [f"  {p['src']} -> {p['dst']}: {p['count']} transition(s), most likely gap {p['mode_s']:.1f} s"
           for p in o["pairs_seen"]]))


def _model_summary(model) -> dict:
    from dataclasses import asdict

    pairs = [{"src": a, "dst": b, "count": model.counts.get((a, b), 0),
              "mode_s": round((int(h.argmax()) + 0.5) * model.params.bin_s, 2)}
             for (a, b), h in sorted(model.hists.items())]
    return {"source": model.source, "p_ref": model.p_ref, "params": asdict(model.params), "pairs_seen": pairs}


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
