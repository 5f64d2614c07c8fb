"""The Verify tab: is the person in this footage the claimed identity? The best-matching track beside the
identity's enrolled crops, a verdict with its score, and the frame of any crop clicked."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import gradio as gr

from reid_core import checks
from reid_core.errors import ReidError
from reid_core.matching import VerifyResult, verify
from reid_core.settings import Settings
from ui.common import (
    error_text,
    face_thumbs,
    files_getter,
    frame_range,
    photo_face_thumbs,
    progress_of,
    run_button,
    threshold_slider,
    thumbs,
    video_inputs,
)
from ui.files import AppFiles
from ui.markdown import md
from ui.viewer import FrameViewer, Look


def result_json(r: VerifyResult, store) -> dict:
    """The verify endpoint's machine-readable answer: {claim, match, score, threshold, track_id, ...} plus where
    the best track is (video, camera, frames)."""
    out = asdict(r)
    crops = store.get_crops(r.probe_keys, jpeg=False) if r.probe_keys else []
    out["score"] = round(r.score, 4)
    out["video_id"] = crops[0].video_id if crops else None
    out["camera"] = crops[0].camera if crops else None
    out["frames"] = [c.frame for c in crops]
    return out


def build(get_store: Callable, settings: Settings, files: AppFiles | None = None) -> None:
    get_files = files_getter(get_store, files)
    keys = gr.State([])
    faces = gr.State([])  # face thumbnails, shown by a private follow-up event (the endpoint keeps its outputs)
    with gr.Row():
        with gr.Column():
            video, start, stop = video_inputs()
            claim = gr.Dropdown(label="Claimed identity", choices=[], allow_custom_value=True)
            threshold = threshold_slider(settings)
            go = gr.Button("Verify", variant="primary")
        with gr.Column():
            verdict = gr.Markdown()
            with gr.Row():
                probe_strip = gr.Gallery(label="Best-matching track in this footage (click to see the frame)",
                                         columns=3, height="auto", object_fit="contain", allow_preview=False)
                enrolled_strip = gr.Gallery(label="The claimed identity's enrolled crops", columns=3,
                                            height="auto", object_fit="contain")
            face_strip = gr.Gallery(label="Faces: the track's (first) beside the claimed identity's enrolled ones",
                                    columns=6, height="auto", object_fit="contain", visible=True)
    viewer = FrameViewer(elem_id="verify-frame")
    details = gr.JSON(label="Result (JSON)", open=False)

    def run(video, from_frame, to_frame, claim, threshold, progress=gr.Progress()):
        if not video:
            return "**Upload a video first.**", [], [], [], None, []
        try:
            a, b = frame_range(from_frame, to_frame)
            r = verify(get_store(), video, claim or "", a, b, checks.score(threshold, "threshold"),
                       progress=progress_of(progress), settings=settings)
        except ReidError as err:
            return error_text("Cannot verify", err), [], [], [], None, []
        store, f = get_store(), get_files()
        if r.track_id is None:
            return "Nobody was detected in this range.", [], [], [], result_json(r, store), []
        word = "✅ Detected: it is " + md(r.claim) if r.match else "❌ No match for " + md(r.claim)
        text = f"## {word}\nscore **{r.score:.0%}** (threshold {r.threshold:.0%}), track {r.track_id}"
        pics = []
        if r.face_score is not None or r.evidence != "body":
            face = "no face on the track" if r.face_score is None else f"face similarity {r.face_score:.0%}"
            text += f"  \ndecided by **{r.evidence}** ({face}; face threshold {r.face_threshold:.0%})"
            ident = store.identity(r.claim)
            pics = face_thumbs(store, r.probe_face_keys, f"track {r.track_id}") + (
                photo_face_thumbs(ident) + face_thumbs(store, ident.keys, r.claim)[:6] if ident else [])
        return (text, thumbs(f, store, r.probe_keys, "this footage"), thumbs(f, store, r.identity_keys, r.claim),
                r.probe_keys, result_json(r, store), pics)

    def look(probe_keys: list[str], evt: gr.SelectData):
        if not probe_keys or evt.index is None or evt.index >= len(probe_keys):
            return None, ""
        store = get_store()
        c = store.get_crops([probe_keys[evt.index]], jpeg=False)[0]
        return FrameViewer.render(store, Look(c.video_id, c.frame, str(c.track_id), f"track {c.track_id}"))

    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    claim.focus(lambda: gr.update(choices=[i.name for i in get_store().identities()]), None, claim, api_name=False)  # type: ignore[arg-type]
    job = run_button(go, run, [video, start, stop, claim, threshold],
                     [verdict, probe_strip, enrolled_strip, keys, details, faces], "verify", progress_on=verdict)
    job.then(lambda pics: pics, [faces], [face_strip], api_name=False)
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    probe_strip.select(look, [keys], viewer.outputs, api_name=False)  # type: ignore[arg-type]
