"""The Identify tab: every person in a clip named or "unknown", refined without recomputing, shown in the frame,
exported as CSV/JSON or as an annotated MP4."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from reid_core import checks
from reid_core.annotate import identify_clip
from reid_core.errors import InputError, ReidError
from reid_core.matching import TrackDecision, identify
from reid_core.results import UNKNOWN, decisions_json, export, refine
from reid_core.settings import Settings
from reid_core.st_store import store_model
from reid_core.video import probe
from ui.common import (
    error_text,
    face_thumbs,
    files_getter,
    frame_range,
    progress_of,
    run_button,
    threshold_slider,
    video_inputs,
)
from ui.fields import optional_frame
from ui.files import AppFiles
from ui.markdown import md
from ui.viewer import FrameViewer, Look


@dataclass
class Identified:
    """One Identify run kept in the session: the video and every decision (refining filters these)."""

    video: str = ""
    video_id: str = ""
    decisions: list[TrackDecision] = field(default_factory=list)
    shown: list[TrackDecision] = field(default_factory=list)


def _caption(d: TrackDecision) -> str:
    name = d.match.identity
    by = f" · by {d.evidence}" if d.face_keys else ""  # a face on the track took part
    timing = f" · {d.st}" if d.st else ""  # camera timing moved the score: say why
    return (f"{'✅ ' + name if name else '❔ unknown'} · {d.match.score:.0%}{by} · track {d.label} · "
            f"frames {d.frames[0]}..{d.frames[-1]}{timing}")


def build(get_store: Callable, settings: Settings, files: AppFiles | None = None, example: Path | None = None) -> None:
    get_files = files_getter(get_store, files)
    state = gr.State(Identified())
    with gr.Row():
        with gr.Column():
            video, start, stop = video_inputs()
            threshold = threshold_slider(settings)
            only = gr.Dropdown(label="Only this identity (empty = all; 'unknown' = the unnamed)", choices=[""],
                               value="", allow_custom_value=True)
            use_st = gr.Checkbox(label="Use camera timing", value=_has_st_model(get_store),
                                 info="Also score by the store's camera-to-camera timing (same threshold).")
            go = gr.Button("Identify", variant="primary")
            with gr.Accordion("Refine the results (no recomputation)", open=False):
                with gr.Row():
                    show_from = optional_frame("Show frames from")
                    show_to = optional_frame("Show frames to")
                min_crops = gr.Slider(0, 50, value=0, step=1, label="Hide tracks shorter than (crops)")
        with gr.Column():
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Tracks (click one to see it in the frame)", columns=5, height="auto",
                                 object_fit="contain", allow_preview=False)
            faces = gr.Gallery(label="Faces seen on the tracks shown (the best of each)", columns=8,
                               height="auto", object_fit="contain")
    viewer = FrameViewer(elem_id="identify-frame")
    table = gr.Dataframe(headers=["track", "identity", "best match", "similarity %", "frames", "seconds", "crops"],
                         interactive=False)
    with gr.Row():
        exports = gr.File(label="The list shown, as CSV and JSON", file_count="multiple")
        clip_btn = gr.Button("Export an annotated clip (MP4) of the list shown")
        clip = gr.File(label="Annotated clip")
    clip_note = gr.Markdown()
    details = gr.JSON(label="Result (JSON)", open=False)

    def render(s: Identified, threshold, identity, show_from, show_to, min_crops):
        if not s.decisions:
            return s, "Run Identify first.", [], [], None, None
        try:
            t = checks.score(threshold, "threshold")
            f0, f1 = checks.frame_range(show_from, show_to, ("Show frames from", "Show frames to"))
            n = checks.count(min_crops or 0, "shortest track", minimum=0)
        except InputError as err:
            return s, error_text("Cannot show the results", err), [], [], None, None
        s.shown = refine(s.decisions, t, (identity or "").strip() or None, f0, f1, n)
        store, f = get_store(), get_files()
        record = store.video(s.video_id)
        fps = record.fps if record and record.fps else 0.0
        rows, pics = [], []
        for d in s.shown:
            secs = f"{d.frames[0] / fps:.1f}..{d.frames[-1] / fps:.1f}" if fps else ""
            rows.append([d.label, d.match.identity or UNKNOWN, d.match.best_match or "",
                         round(d.match.score * 100, 1), f"{d.frames[0]}..{d.frames[-1]}", secs, len(d.frames)])
            mid = d.keys[len(d.keys) // 2]
            pics.append((f.crop_file(mid, store.get_crops([mid])[0].jpeg), _caption(d)))
        people = sorted({d.match.identity for d in s.shown if d.match.identity})
        named = sum(1 for d in s.shown if d.match.identity)
        text = (f"**{named} of {len(s.shown)} tracks named** at threshold {t:.0%}"
                + (f" ({', '.join(md(p) for p in people)})" if people else "") + "; the rest are unknown."
                + (f" Showing {len(s.shown)} of {len(s.decisions)} tracks." if len(s.shown) != len(s.decisions)
                   else ""))
        result = decisions_json(s.shown, t, record)
        out = f.export_dir()
        paths = [str(export(result, out / "identify.csv")), str(export(result, out / "identify.json"))]
        return s, text, pics, rows, paths, result

    def run(video, from_frame, to_frame, threshold, identity, show_from, show_to, min_crops, use_st=None,
            progress=gr.Progress()):
        s = Identified()
        if not video:
            return s, "**Upload a video first.**", [], [], None, None
        try:
            a, b = frame_range(from_frame, to_frame)
            ds = identify(get_store(), video, a, b, checks.score(threshold, "threshold"),
                          progress=progress_of(progress), settings=settings,
                          st=None if use_st is None else bool(use_st))
            s = Identified(video, probe(video).video_id, ds)
        except ReidError as err:
            return s, error_text("Cannot identify", err), [], [], None, None
        if not ds:
            return s, "Nobody was detected in this range.", [], [], None, None
        return render(s, threshold, identity, show_from, show_to, min_crops)

    def look(s: Identified, evt: gr.SelectData):
        if not s.shown or evt.index is None or evt.index >= len(s.shown):
            return None, ""
        d = s.shown[evt.index]
        return FrameViewer.render(get_store(), Look(s.video_id, d.frames[len(d.frames) // 2], d.label,
                                                    _caption(d), s.video), s.shown)

    def make_clip(s: Identified, progress=gr.Progress()):
        if not s.shown:
            return None, "Run Identify first (the clip shows the list of tracks shown)."
        try:
            out = get_files().export_dir() / "identify.mp4"
            r = identify_clip(get_store(), s.video, s.shown, out)
        except ReidError as err:
            return None, error_text("Cannot export the clip", err)
        return str(r.path), f"Annotated clip of {len(s.shown)} tracks written ({r.frames} frames)."

    def show_faces(s: Identified):
        """The faces beside the body crops, filled by a private follow-up event so the endpoints stay as they were."""
        store = get_store()
        return [pic for d in s.shown if d.face_keys
                for pic in face_thumbs(store, d.face_keys[:1], f"track {d.label} · {d.match.identity or UNKNOWN}")]

    outputs = [state, summary, gallery, table, exports, details]
    job = run_button(go, run, [video, start, stop, threshold, only, show_from, show_to, min_crops, use_st],
                     outputs, "identify", progress_on=summary)
    job.then(show_faces, [state], [faces], api_name=False)
    refine_inputs = [state, threshold, only, show_from, show_to, min_crops]
    threshold.release(render, refine_inputs, outputs, api_name="identify_refine").then(
        show_faces, [state], [faces], api_name=False)
    for control in (only, show_from, show_to):
        # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
        control.change(render, refine_inputs, outputs, api_name=False)  # type: ignore[arg-type]
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    min_crops.release(render, refine_inputs, outputs, api_name=False)  # type: ignore[arg-type]
    if example is not None:  # one click fills the inputs and runs: a first visitor sees it work
        gr.Examples([[str(example), "", ""]], [video, start, stop], outputs, fn=lambda v, a, b: run(
            v, a, b, settings.threshold, "", "", "", 0), run_on_click=True, cache_examples=False,
            label="Example: the first 17 s of PETS09-S2L1")
    only.focus(lambda: gr.update(choices=["", UNKNOWN] + [i.name for i in get_store().identities()]), None, only,
               # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
               api_name=False)  # type: ignore[arg-type]
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    gallery.select(look, [state], viewer.outputs, api_name=False)  # type: ignore[arg-type]
    run_button(clip_btn, make_clip, [state], [clip, clip_note], "identify_clip", progress_on=clip)


def _has_st_model(get_store: Callable) -> bool:
    """Camera timing starts on where the store has a model (a damaged model file: off; using it says why)."""
    try:
        return store_model(get_store()) is not None
    except ReidError:
        return False
