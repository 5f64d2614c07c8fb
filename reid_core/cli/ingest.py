"""`reid ingest`, `reid embed`, `reid info`."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from reid_core.cli.common import JsonOpt, StoreOpt, emit, store_path, wants_json
from reid_core.embedding import DEFAULT_MODEL
from reid_core.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_cmd)
    app.command("embed")(embed_cmd)
    app.command("info")(info_cmd)


def ingest_cmd(
    video: Annotated[Path, typer.Argument(help="Video file to add to the store.")],
    camera: Annotated[str | None, typer.Option(help="Camera/source name (default: the file name).")] = None,
    from_frame: Annotated[int, typer.Option("--from-frame", help="First frame, 0-based, inclusive.")] = 0,
    to_frame: Annotated[int | None, typer.Option("--to-frame", help="Last frame, inclusive (default: end).")] = None,
    stride: Annotated[int, typer.Option(help="Process every K-th frame (the others are not stored).")] = 1,
    detect_every: Annotated[str, typer.Option(
        "--detect-every", help="Run the detector on every K-th frame and interpolate the boxes in between (all "
                               "frames stored); 'auto': 2 when that still detects 3.5 times a second, "
                               "else 1.")] = "auto",
    feature_every: Annotated[int, typer.Option(
        "--feature-every", min=1,
        help="Embed ambiguous crops plus one per K frames of each track (1: every crop).")] = 5,
    model: Annotated[str | None, typer.Option(help="Embedder: a manifest model or a trained model's name "
                                              "(default: $REID_EMBEDDER or osnet_x0_25_msmt17).")] = None,
    replace: Annotated[bool, typer.Option(help="Delete overlapping ingests of this video first.")] = False,
    start: Annotated[str | None, typer.Option(
        help="Wall-clock time of the video's first frame, ISO-8601 (e.g. 2026-12-02T10:15:00Z; no offset = UTC). "
             "Default: the container's creation time (MP4/MOV), else unknown (times per video only).")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Detect, track and embed the people in VIDEO and store their crops (resumes an interrupted run)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from reid_core.cli.common import settings as command_settings
    from reid_core.clock import iso
    from reid_core.ingest import ingest
    from reid_core.names import validate_camera
    from reid_core.store import Store

    if camera is not None:  # the library checks too; here it fails before the progress bar appears
        validate_camera(camera)
    if start is not None:
        from reid_core.clock import parse_start

        try:
            parse_start(start)
        except InputError as e:
            raise InputError(str(e), cli_hint="pass --start like 2026-12-02T10:15:00Z") from None
    json_out = wants_json(json_out)
    if detect_every != "auto" and not (detect_every.isdigit() and int(detect_every) >= 1):
        raise InputError(f"--detect-every must be a whole number >= 1 or 'auto' (got {detect_every!r})",
                         cli_hint="e.g. --detect-every 2")
    settings = dataclasses.replace(command_settings(store, embedder=model).ingest,  # the gate follows the embedder
                                   detect_every=0 if detect_every == "auto" else int(detect_every),
                                   feature_every=feature_every)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=json_out) as bar:
        task = bar.add_task(f"ingest {video.name}", total=None)
        result = ingest(video, Store(store_path(store)), camera, from_frame, to_frame, stride, settings,
                        progress=lambda done, total: bar.update(task, completed=done, total=total), replace=replace,
                        start_time=start)
    run = result.run
    out = {"video_id": result.video.video_id, "camera": result.video.camera, "run_id": run.run_id,
           "from_frame": run.from_frame, "to_frame": run.to_frame, "stride": run.stride,
           "detect_every": run.settings.get("detect_every", 1), "feature_every": run.settings.get("feature_every", 1),
           "reused": result.reused,
           "resumed": result.resumed, "tracks": result.tracks, "crops": result.crops,
           "track_ids": sorted(run.track_map.values()), "seconds": round(result.seconds, 2),
           "start": iso(result.video.start), "start_source": result.video.start_source}
    emit(out, json_out, lambda r: (f"{'reused stored' if r['reused'] else 'ingested'} {video.name} frames "
                                   f"{r['from_frame']}..{r['to_frame']}: {r['tracks']} tracks, {r['crops']} crops "
                                   f"({r['seconds']} s){' (resumed)' if r['resumed'] else ''}; camera "
                                   f"{r['camera']}, start {r['start'] or 'unknown (times per video only)'}"))


def embed_cmd(
    inp: Annotated[Path, typer.Option("--in", help="uint8 .npy of shape (N, 256, 128, 3), RGB.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write float32 (N, D) features, rows L2-normalised.")],
    model: Annotated[str, typer.Option(help="Embedder model name (default: the ingest's embedder).")] = DEFAULT_MODEL,
    backend: Annotated[str, typer.Option(help="openvino (fast) or torch (reference).")] = "openvino",
    flip: Annotated[bool, typer.Option(help="Average with the horizontally flipped crop.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per forward pass.")] = 32,
    json_out: JsonOpt = False,
) -> None:
    """Embed an array of crops with the project's embedder (for outside benchmarks)."""
    from reid_core.checks import count
    from reid_core.embedding import load_embedder

    count(batch_size, "--batch-size")
    try:
        crops = np.load(inp, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{inp}: not a readable .npy array ({e})") from None
    embedder = load_embedder(model, backend, flip)
    feats = embedder.embed(crops, batch_size=batch_size)
    np.save(out, feats)
    emit({"in": str(inp), "out": str(out), "n": int(len(feats)), "dim": int(feats.shape[1]), "model": model,
          "backend": backend, "flip": flip}, json_out,
         lambda r: f"wrote {r['n']} x {r['dim']} features to {r['out']} ({r['model']}, {r['backend']})")


def info_cmd(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """What the store holds, which models are used and where each weight file was found."""
    from reid_core.calibration import calibration_source
    from reid_core.cli.common import settings as command_settings
    from reid_core.clock import iso
    from reid_core.errors import WeightsError
    from reid_core.models import list_trained
    from reid_core.precision import cpu_has_bf16, inference_precision, requested
    from reid_core.store import Store
    from reid_core.weights import available, search_dirs

    s = Store(store_path(store))
    cfg = command_settings(store)
    models = {}
    for name, found in available().items():
        if isinstance(found, WeightsError):
            models[name] = {"found": False, "error": str(found).splitlines()[0]}
        else:
            models[name] = {"found": True, "kind": found.kind, "format": found.format,
                            "paths": [str(p) for p in found.paths], "licence": found.licence}
    out = {
        "store": str(s.path.resolve()),
        "counts": s.stats(),
        "videos": [{"video_id": v.video_id, "camera": v.camera, "path": v.path, "frames": v.frame_count,
                    "fps": v.fps, "start": iso(v.start), "start_source": v.start_source} for v in s.videos()],
        "runs": [{"run_id": r.run_id, "video_id": r.video_id, "frames": [r.from_frame, r.to_frame],
                  "stride": r.stride, "status": r.status, "crops": r.crops, "tracks": len(r.track_map)}
                 for r in s.runs()],
        "identities": [{"name": i.name, "crops": len(i.keys)} for i in s.identities()],
        "models_in_use": {"detector": cfg.ingest.detector.model, "embedder": cfg.embedder,
                          "backend": cfg.ingest.backend, "precision": inference_precision(),
                          "precision_setting": f"REID_PRECISION={requested()}", "cpu_bf16": cpu_has_bf16(),
                          "threshold": cfg.threshold,
                          "calibration": calibration_source(cfg.embedder)},
        "weights_search_path": [str(d) for d in search_dirs()],
        "models": models,
        "trained_models": {name: str(path) for name, path in sorted(list_trained().items())},
    }

    def human(r: dict) -> str:
        lines = [f"store: {r['store']}", "counts: " + ", ".join(f"{k} {v}" for k, v in r["counts"].items())]
        lines += [f"  video {v['video_id'][:12]} camera={v['camera']} start={v['start'] or 'unknown'} "
                  f"frames={v['frames']} {v['path']}" for v in r["videos"]]
        lines += [f"  run {x['run_id']} frames {x['frames'][0]}..{x['frames'][1]} {x['status']} "
                  f"{x['tracks']} tracks {x['crops']} crops" for x in r["runs"]]
        lines.append("models in use: " + ", ".join(f"{k}={v}" for k, v in r["models_in_use"].items()))
        lines.append("weights (searched " + " -> ".join(r["weights_search_path"]) + "):")
        for name, m in r["models"].items():
            lines.append(f"  {name}: " + (m["paths"][0] if m["found"] else "MISSING: " + m["error"]))
        lines += [f"  {name} (trained): {path}" for name, path in r["trained_models"].items()]
        return "\n".join(lines)

    emit(out, json_out, human)
