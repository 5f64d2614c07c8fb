"""`reid search-text "QUERY"`: find people in the store by a description."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reid_core.cli.common import JsonOpt, StoreOpt, emit, store_path


def register(app: typer.Typer) -> None:
    app.command("search-text")(search_text_cmd)


def search_text_cmd(
    query: Annotated[str, typer.Argument(help='What the person looks like, e.g. "man in a red top with a backpack".')],
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=1000, help="How many tracks to return.")] = 10,
    engine: Annotated[str, typer.Option(help="attributes (offline model), learned (the PETA-trained text model, "
                                             "see `reid train text`), clip (needs --clip-checkpoint), or auto "
                                             "(every one available, combined).")] = "auto",
    text_model: Annotated[str | None, typer.Option("--text-model", help="Learned text model name or .pt file "
                                                   "(default $REID_TEXT_MODEL or peta-text).")] = None,
    clip_checkpoint: Annotated[Path | None, typer.Option("--clip-checkpoint", help="Local CLIP checkpoint file "
                                                         "(default $REID_CLIP_CHECKPOINT). None ships.")] = None,
    clip_model: Annotated[str | None, typer.Option("--clip-model", help="open_clip model name for open_clip-format "
                                                   "checkpoints, e.g. ViT-B-32 (default $REID_CLIP_MODEL).")] = None,
    video_id: Annotated[str | None, typer.Option("--video-id", help="Only search this video's tracks.")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show how each result met each part of the query.")]
    = False,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rank the store's tracks by how well they fit QUERY: one result per track, best first, with a caption."""
    from reid_core.store import Store
    from reid_core.text_search import searcher_for

    searcher = searcher_for(Store(store_path(store)), engine, clip_checkpoint, clip_model, text_model)
    result = searcher.search(query, top_k=top_k, engine=engine, video_id=video_id)

    def human(_: dict) -> str:
        lines = [f"query: {result.query!r}"] + [f"{label}: {text}" for label, text in result.summary()]
        if not result.hits:
            lines.append("no results")
        for rank, h in enumerate(result.hits, 1):
            x, y, w, hh = h.box.as_list()
            lines.append(f"{rank:3d}. {h.score * 100:5.1f}%  track {h.track_id:<5d} {Path(h.video).name} "
                         f"frame {h.frame} box {x:.0f},{y:.0f},{w:.0f},{hh:.0f}  {h.caption}")
            if explain and h.agreements:
                lines.append(f"       {h.explanation()}")
        return "\n".join(lines)

    emit(result.to_json(), json_out, human)
