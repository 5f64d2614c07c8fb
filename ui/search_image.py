"""The Search-by-image part: an uploaded person crop -> the most similar stored tracks, filtered, exported, and
each shown in its frame on click."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr

from reid_core import checks
from reid_core.errors import ReidError
from reid_core.matching import SearchHit, search_image
from reid_core.results import export, filter_hits, hits_json
from reid_core.settings import Settings
from reid_core.st_store import store_model
from ui.common import APP_FRAME_NAMES, error_text, files_getter, run_button
from ui.fields import optional_frame
from ui.files import AppFiles
from ui.viewer import FrameViewer, Look


def build(get_store: Callable, settings: Settings, files: AppFiles | None = None) -> None:
    get_files = files_getter(get_store, files)
    shown = gr.State([])
    gr.Markdown("### Find people by an image")
    with gr.Row():
        with gr.Column():
            image = gr.File(label="Person crop (JPEG or PNG)", file_types=["image"], type="filepath",
                            elem_id="search-image-file")
            top_k = gr.Slider(1, 50, value=10, step=1, label="Results")
            go = gr.Button("Search by image", variant="primary")
        with gr.Column():
            min_score = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Minimum similarity",
                                  info=f"Same cosine scale as identify (default identity threshold "
                                       f"{settings.threshold:.2f})")
            camera = gr.Dropdown(label="Camera / source (empty = all)", choices=[""], value="",
                                 allow_custom_value=True)
            with gr.Row():
                f0 = optional_frame("From frame")
                f1 = optional_frame("To frame")
            use_st = gr.Checkbox(label="Use camera timing", value=_has_st_model(get_store),
                                 info="Re-score by each track's camera-to-camera timing relative to the best hit.")
    note = gr.Markdown()
    results = gr.Gallery(label="Most similar tracks (click one to see it in the frame)", columns=5, height="auto",
                         object_fit="contain", allow_preview=False)
    viewer = FrameViewer(elem_id="search-frame")
    table = gr.Dataframe(headers=["rank", "similarity %", "camera", "video", "frame", "seconds", "track"],
                         interactive=False)
    exports = gr.File(label="Export (CSV and JSON)", file_count="multiple")

    def run(image, top_k, min_score=0.0, camera="", from_frame=None, to_frame=None, use_st=None):
        if not image:
            return [], "**Upload an image first.**", [], None, []
        try:
            k = checks.count(top_k, "results")
            floor = checks.score(min_score or 0, "minimum similarity")
            a, b = checks.frame_range(from_frame, to_frame, APP_FRAME_NAMES)
            data = checks.image_file(image)  # size caps before anything decodes it
            store = get_store()
            hits = search_image(store, data, None, settings, None if use_st is None else bool(use_st))
        except ReidError as err:
            return [], error_text("Cannot search", err), [], None, []
        if not hits:
            return [], "The store holds no crops yet: ingest or enroll some footage first.", [], None, []
        total = len(hits)
        hits = filter_hits(hits, floor or None, camera or None, None, a, b)[:k]
        result = hits_json(hits, store)
        crops = {c.key: c for c in store.get_crops([h.key for h in hits])}
        fps = {v.video_id: v.fps for v in store.videos()}
        f = get_files()
        items = [(f.crop_file(h.key, crops[h.key].jpeg),
                  f"{h.score:.0%} · {h.camera} · frame {h.frame} · track {h.track_id}"
                  + (f" · {h.st}" if h.st else "")) for h in hits]
        rows = [[i, round(r["score"] * 100, 1), r["camera"], Path(r["video"] or r["video_id"]).name, r["frame"],
                 round(r["frame"] / fps[r["video_id"]], 1) if fps.get(r["video_id"]) else "", r["track_id"]]
                for i, r in enumerate(result["results"], 1)]
        msg = f"{len(hits)} tracks shown (of {total} in the store)" if hits else "No track passes the filters."
        paths = ([str(export(result, f.export_dir() / f"search_image.{ext}")) for ext in ("csv", "json")]
                 if hits else None)
        return items, msg, rows, paths, hits

    def look(hits: list[SearchHit], evt: gr.SelectData):
        if not hits or evt.index is None or evt.index >= len(hits):
            return None, ""
        h = hits[evt.index]
        return FrameViewer.render(get_store(), Look(h.video_id, h.frame, str(h.track_id),
                                                    f"track {h.track_id} · similarity {h.score:.0%}"))

    run_button(go, run, [image, top_k, min_score, camera, f0, f1, use_st], [results, note, table, exports, shown],
               "search_image", progress_on=note)
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    results.select(look, [shown], viewer.outputs, api_name=False)  # type: ignore[arg-type]
    camera.focus(lambda: gr.update(choices=[""] + sorted({v.camera for v in get_store().videos()})), None, camera,
                 # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
                 api_name=False)  # type: ignore[arg-type]


def _has_st_model(get_store: Callable) -> bool:
    """Camera timing starts on where the store has a model (a damaged model file: off; using it says why)."""
    try:
        return store_model(get_store()) is not None
    except ReidError:
        return False
