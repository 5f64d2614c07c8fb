"""`reid eval`: score the project (or a feature file) with the standard ReID metrics."""
from __future__ import annotations

import io
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from reid_core.cli.common import JsonOpt, emit
from reid_core.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


def eval_cmd(
    mot: Annotated[Path | None, typer.Option("--mot", help="MOTChallenge sequence folder (video or img1/, "
                                             "gt/gt.txt or gt.txt, optional persons.json).")] = None,
    market: Annotated[Path | None, typer.Option("--market", help="Market-1501 style folder (query/, "
                                                "bounding_box_test/).")] = None,
    peta: Annotated[Path | None, typer.Option("--peta", help="PETA subset folder (VIPeR, PRID, GRID, or names "
                                              "PID_CAM...), scored single-shot cross-camera.")] = None,
    features: Annotated[Path | None, typer.Option("--features", help=".npz with query/gallery features, pids, "
                                                  "camids.")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Embedder; repeat for an ensemble "
                                                    "(features concatenated).")] = None,
    backend: Annotated[str | None, typer.Option(help="openvino (default) or torch.")] = None,
    flip: Annotated[bool | None, typer.Option("--flip/--no-flip", help="Average each crop with its mirror "
                                              "image.")] = None,
    rerank: Annotated[bool | None, typer.Option("--rerank/--no-rerank", help="k-reciprocal re-ranking "
                                                "(k1=20, k2=6, lambda=0.3).")] = None,
    shortlist: Annotated[int | None, typer.Option(help="Re-rank only each query's N nearest gallery items "
                                                  "(bounded memory); 0 = exact.")] = None,
    aqe: Annotated[int | None, typer.Option(help="Average query expansion with K gallery neighbours.")] = None,
    dba: Annotated[int | None, typer.Option(help="Database-side augmentation: each gallery item averaged with "
                                            "its K nearest gallery items.")] = None,
    tracks: Annotated[str | None, typer.Option(help="Track-level features: none, tracker (the project's "
                                               "tracker) or oracle (gt tracks; an upper bound).")] = None,
    track_weight: Annotated[float | None, typer.Option("--track-weight", help="Weight of the track mean "
                                                       "against the crop (1 = replace).")] = None,
    metric: Annotated[str | None, typer.Option(help="cosine (default) or euclidean.")] = None,
    best: Annotated[bool, typer.Option("--best", help="The project's best inference-time settings "
                                       "(docs/evaluation.md).")] = False,
    by_track: Annotated[bool, typer.Option("--by-track", help="MOT: score gt track ids even when persons.json "
                                           "exists.")] = False,
    frames: Annotated[str | None, typer.Option("--frames", help="MOT: score only gt boxes in frames A-B "
                                               "(0-based, inclusive), e.g. 400-794.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for report.json, cmc.png, roc.png "
                                             "(default runs/eval/NAME).")] = None,
    save_features: Annotated[Path | None, typer.Option("--save-features", help="Also write the final "
                                                       "features as an .npz (the --features format).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute embeddings and tracks.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Score re-identification: mAP, CMC (rank 1/5/10/20), mINP, TAR@FAR, EER; writes a JSON report and PNGs."""
    from reid_core.evaluation import runner

    sources = [s for s in (mot, market, peta, features) if s is not None]
    if len(sources) != 1:
        raise InputError("give exactly one of --mot DIR, --market DIR, --peta DIR or --features FILE.npz")
    if frames is not None and mot is None:
        raise InputError("--frames applies to --mot sequences only")
    # EvalSettings field -> the value given on the command line (None: not given), for replace(**given)
    chosen: dict[str, Any] = {"models": tuple(model) if model else None, "backend": backend, "flip": flip,
                              "rerank": rerank, "shortlist": shortlist, "aqe": aqe, "dba": dba, "tracks": tracks,
                              "track_weight": track_weight, "metric": metric}
    given = {k: v for k, v in chosen.items() if v is not None}
    if best:
        if given:
            raise InputError(f"--best fixes the settings itself; drop --best or drop "
                             f"{', '.join('--' + k.replace('_', '-') for k in given)}")
        settings = runner.BEST
    else:
        settings = replace(runner.EvalSettings(), **given)
    settings.check()
    cache = runner.DiskCache(None) if no_cache else runner.default_cache()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    name = Path(sources[0]).resolve().stem if features else Path(sources[0]).resolve().name
    out_dir = out or Path("runs") / "eval" / name
    if mot is not None:
        evaluation = runner.MotEvaluation(mot, use_persons=not by_track, cache=cache, log=log,
                                          frames=parse_frame_range(frames))
        report = evaluation.run(settings, out_dir, save_features=save_features)
    elif market is not None:
        report = runner.evaluate_market(market, settings, out_dir, cache=cache, log=log, save_features=save_features)
    elif peta is not None:
        report = runner.evaluate_peta(peta, settings, out_dir, cache=cache, log=log, save_features=save_features)
    else:
        if save_features is not None:
            raise InputError("--save-features applies to --mot, --market and --peta; the features are already a file")
        assert features is not None, "exactly one source is given, and it is not --mot/--market/--peta"
        report = runner.evaluate_features(features, settings, out_dir)
    emit(report.to_dict(), json_out, lambda _: _table(report))


def parse_frame_range(text: str | None) -> tuple[int, int] | None:
    """'400-794' -> (400, 794)."""
    if text is None:
        return None
    try:
        first, last = (int(x) for x in text.split("-"))
    except ValueError:
        raise InputError(f"--frames takes FIRST-LAST, e.g. 400-794; got {text!r}") from None
    return first, last


def _table(report) -> str:
    from rich.console import Console
    from rich.table import Table

    from reid_core.evaluation.runner import summary_rows

    d = report.dataset
    table = Table(title=f"{d.name} ({d.kind}{', ' + d.identity + 's' if d.identity else ''})", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in summary_rows(report):
        table.add_row(k, v)
    buf = io.StringIO()
    console = Console(file=buf, width=110, force_terminal=False, color_system=None)
    console.print(f"settings: {report.settings.label()}")
    console.print(table)
    if d.counts:
        console.print("protocol: " + ", ".join(f"{k} {v}" for k, v in d.counts))
    for note in report.notes:
        console.print(f"note: {note}")
    t = report.timings
    console.print(f"time: {t.total_s:.1f} s (embedding {t.embed_s:.1f} s, tracking {t.track_s:.1f} s, "
                  f"scoring {t.score_s:.2f} s)")
    for k, v in report.files.written():
        console.print(f"{k}: {v}")
    return buf.getvalue().rstrip()
