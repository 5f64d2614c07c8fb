"""The app's Ingest tab: upload a video, pick a frame range, store its people (with a progress bar)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import gradio as gr
import numpy as np

from reid_core import checks
from reid_core.clock import iso
from reid_core.errors import ReidError
from reid_core.ingest import ingest
from reid_core.names import validate_camera
from reid_core.settings import Settings
from reid_core.video import probe, read_frame
from ui.common import error_text, frame_range, progress_of, run_button
from ui.fields import optional_frame
from ui.markdown import md


def _range_info(video: str | None, start) -> tuple[str, np.ndarray | None]:
    """What the file is, and the first frame of the range as a preview (browsers cannot play many CCTV codecs,
    so the app shows decoded frames rather than a player)."""
    if not video:
        return "Upload a video (mp4, avi, mkv, mov).", None
    try:
        info = probe(video)
        frame = read_frame(video, min(checks.frame(start or 0) or 0, info.frame_count - 1))
    except ReidError as e:
        return error_text("Cannot use this file", e), None
    text = (f"{md(Path(video).name)}: {info.frame_count} frames (0..{info.frame_count - 1}), {info.fps:.1f} fps, "
            f"{info.width}x{info.height}")
    return text, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def build(get_store: Callable[[], object], settings: Settings, example: Path | None = None) -> None:
    with gr.Row():
        with gr.Column():
            video = gr.File(label="Video", file_types=["video", ".avi", ".mkv", ".mov", ".mp4"], type="filepath")
            preview = gr.Image(label="First frame of the range", interactive=False)
        with gr.Column():
            summary = gr.Markdown("Upload a video (mp4, avi, mkv, mov).")
            camera = gr.Textbox(label="Camera / source name (default: file name)")
            start = gr.Textbox("", label="Wall-clock start of the video (ISO-8601, e.g. 2026-12-02T10:15:00Z)",
                               info="Empty: the file's creation time if it has one, else unknown (times per video "
                                    "only). Cameras on one clock let the app use camera-to-camera timing.")
            with gr.Row():
                from_frame = optional_frame("From frame (0-based, empty = start)", "start of the video")
                to_frame = optional_frame("To frame (inclusive, empty = end)", "end of the video")
            stride = gr.Number(label="Every K-th frame", value=1, precision=0, minimum=1)
            replace = gr.Checkbox(label="Replace what is stored for this range",
                                  info="Deletes stored runs of this video that overlap the range (e.g. an "
                                       "accidental one-frame ingest) and ingests it again.")
            go = gr.Button("Ingest", variant="primary")
    result = gr.Markdown()
    if example is not None:
        gr.Examples([[str(example)]], [video], label="Example: the first 17 s of PETS09-S2L1")
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    video.change(_range_info, [video, from_frame], [summary, preview], api_name=False)  # type: ignore[arg-type]
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    from_frame.change(_range_info, [video, from_frame], [summary, preview], api_name=False)  # type: ignore[arg-type]

    def run(video, camera, from_frame, to_frame, stride, replace=False, start="", progress=gr.Progress()):
        if not video:
            return "**Upload a video first.**"
        try:
            name = validate_camera(camera) if (camera or "").strip() else None
            a, b = frame_range(from_frame, to_frame)
            res = ingest(video, get_store(), camera=name, from_frame=a, to_frame=b,
                         stride=checks.count(stride or 1, "every K-th frame"), replace=bool(replace),
                         settings=settings.ingest, start_time=(start or "").strip() or None,
                         progress=progress_of(progress))
        except ReidError as e:
            return error_text("Not ingested", e)
        verb = "Already stored" if res.reused else ("Resumed and stored" if res.resumed else "Stored")
        return (f"**{verb}:** {md(res.video.camera)}, frames {res.run.from_frame}..{res.run.to_frame}: "
                f"{res.tracks} people tracks, {res.crops} crops ({res.seconds:.1f} s); start "
                f"{iso(res.video.start) or 'unknown'} ({res.video.start_source}).")

    run_button(go, run, [video, camera, from_frame, to_frame, stride, replace, start], [result], "ingest",
               progress_on=result)
