"""The Enroll tab: upload footage, click the person on the preview, name them; the whole visit is enrolled."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr

from reid_core import checks
from reid_core.annotate import frame_view
from reid_core.enrollment import enroll
from reid_core.errors import InputError, ReidError
from reid_core.face_evidence import enroll_photo
from reid_core.names import validate_new_name
from reid_core.settings import Settings
from reid_core.types import Box
from reid_core.video import probe
from ui.common import (
    error_text,
    files_getter,
    frame_range,
    photo_face_thumbs,
    progress_of,
    run_button,
    thumbs,
    video_inputs,
)
from ui.files import AppFiles
from ui.markdown import md


def _point(text: str) -> Box | None:
    """The clicked pixel as the zero-size box enrollment reads as "the person under this point"."""
    if not (text or "").strip():
        return None
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"the picked point must be two numbers x,y (click the preview), got {text!r}") \
            from None
    return Box(x, y, 0, 0)


def build(get_store: Callable, settings: Settings, files: AppFiles | None = None) -> None:
    get_files = files_getter(get_store, files)
    gr.Markdown("Enroll a person: upload footage and name them. If several people are in it, click the one to "
                "enroll on the preview (set *Pick at frame* to a frame where they are visible). The whole visit "
                "is taken: the clicked stretch and the pieces of the same walk before and after it.")
    with gr.Row():
        with gr.Column():
            video, start, stop = video_inputs()
            name = gr.Textbox(label="Name (letters, digits, spaces, . _ - ')")
            at_frame = gr.Number(label="Pick at frame", value=0, precision=0, minimum=0)
            click = gr.Textbox(label="Picked point x,y (click the preview)", interactive=True)
            force = gr.Checkbox(label="Add even if it does not look like them",
                                info="Adding to an existing identity footage that looks like someone else is refused "
                                     "unless this is ticked.")
            go = gr.Button("Enroll", variant="primary")
        with gr.Column():
            preview = gr.Image(label="Preview: click the person to enroll", interactive=False)
            message = gr.Markdown()
            sample = gr.Gallery(label="What was enrolled (a strip of its crops)", columns=6, height="auto",
                                object_fit="contain")
    details = gr.JSON(label="Result (JSON)", open=False)
    with gr.Accordion("Enroll from a face photo (no footage needed)", open=False):
        gr.Markdown("A clear frontal photo of the face: it is matched against faces seen on tracks where they are "
                    "large enough (docs/face.md). With several faces in the photo the largest is enrolled.")
        with gr.Row():
            with gr.Column():
                photo = gr.File(label="Face photo (JPEG/PNG)", file_types=["image"], type="filepath")
                photo_name = gr.Textbox(label="Name (letters, digits, spaces, . _ - ')")
                photo_go = gr.Button("Enroll from photo", variant="primary")
            with gr.Column():
                photo_message = gr.Markdown()
                photo_faces = gr.Gallery(label="The identity's enrolled faces", columns=6, height="auto",
                                         object_fit="contain")

    def run_photo(path, name):
        if not path:
            return "**Upload a photo first.**", [], None
        try:
            r = enroll_photo(get_store(), checks.image_file(path), name or "", f"photo {Path(path).name}")
        except ReidError as err:
            return error_text("Not enrolled", err), [], None
        text = (f"**Enrolled {md(r.identity.name)}** from the face at {', '.join(str(int(v)) for v in r.box.as_list())}"
                f" (x, y, w, h); {len(r.identity.faces)} face photo(s), {len(r.identity.keys)} body crops in total.")
        text += "".join(f"  \n**Warning:** {md(w)}" for w in r.warnings)
        result = {"identity": r.identity.name, "face_box": r.box.as_list(), "faces_found": r.faces_found,
                  "total_faces": len(r.identity.faces), "total_crops": len(r.identity.keys), "warnings": r.warnings}
        return text, photo_face_thumbs(r.identity), result

    def show(video, frame):
        if not video:
            return None, ""
        try:
            info = probe(video)
            f = min(checks.frame(frame or 0, "pick frame") or 0, info.frame_count - 1)
            image = frame_view(get_store(), video, f)
        except ReidError as err:
            return None, error_text("Cannot use this file", err)
        people = [t for t in get_store().tracks(info.video_id, f, f)] if get_store().video(info.video_id) else []
        hint = (f"; {len(people)} people already tracked at frame {f} (boxes): click one" if people else
                "; click the person to enroll (not needed when only one person is in the range)")
        return image, f"{info.frame_count} frames (0..{info.frame_count - 1}){hint}"

    def picked(evt: gr.SelectData):
        return f"{evt.index[0]},{evt.index[1]}"

    def run(video, from_frame, to_frame, name, at_frame, point, force=False, progress=gr.Progress()):
        if not video:
            return "**Upload a video first.**", [], None
        try:
            box = _point(point)
            a, b = frame_range(from_frame, to_frame)
            at = checks.frame(at_frame, "pick frame") if box else None
            store = get_store()
            if store.identity(name or "") is None:  # a new name: refuse look-alikes before the ingest, not after
                validate_new_name(name or "", [i.name for i in store.identities()])
            r = enroll(store, video, name, a, b, at, box, progress=progress_of(progress), force=bool(force),
                       settings=settings)
        except (ReidError, ValueError) as err:
            return error_text("Not enrolled", err), [], None
        text = (f"**Enrolled {md(r.identity.name)}**: +{len(r.added_keys)} crops, frames {r.frame_span[0]}.."
                f"{r.frame_span[1]} ({r.visit_share:.0%} of those frames) from segment(s) {', '.join(r.segments)}; "
                f"{len(r.identity.keys)} in total.")
        if r.left_out:
            text += f"  \n{len(r.left_out)} crop(s) that do not look like the rest were left out."
        text += "".join(f"  \n**Warning:** {md(w)}" for w in r.warnings)
        result = {"identity": r.identity.name, "added_crops": len(r.added_keys), "total_crops": len(r.identity.keys),
                  "segments": r.segments, "frame_span": list(r.frame_span), "visit_share": round(r.visit_share, 3),
                  "left_out": len(r.left_out), "warnings": r.warnings}
        return text, thumbs(get_files(), get_store(), r.sample_keys, r.identity.name), result

    video.change(show, [video, at_frame], [preview, message], api_name=False)
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    at_frame.change(show, [video, at_frame], [preview, message], api_name=False)  # type: ignore[arg-type]
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    preview.select(picked, None, click, api_name=False)  # type: ignore[arg-type]
    run_button(go, run, [video, start, stop, name, at_frame, click, force], [message, sample, details], "enroll",
               progress_on=message)
    run_button(photo_go, run_photo, [photo, photo_name], [photo_message, photo_faces, details], "enroll_photo",
               progress_on=photo_message)
