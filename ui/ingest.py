"""The app's Ingest tab: upload a video, pick a frame range, store its people (with a progress bar)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import gradio as gr
import numpy as np

from reid_core import checks
from reid_core.errors import ReidError
from reid_core.ingest import ingest
from reid_core.names import validate_camera
from reid_core.video import probe, read_frame
from ui.fields import optional_frame
from ui.markdown import md


def _range_info(video: str | None, start) -> tuple[str, np.ndarray | None]:
    """What the file is, and the first frame of the range as a preview (browsers cannot play many CCTV codecs,
    so the app shows decoded frames rather than a player)."""
    if not video:
        return "Upload a video (mp4, avi, mkv, mov).", None
    try:
        info = probe(video)
        frame = read_frame(video, min(checks.frame(start or 0), info.frame_count - 1))
    except ReidError as e:
        return f"**Cannot use this file:** {md(e)}", None
    text = (f"{md(Path(video).name)}: {info.frame_count} frames (0..{info.frame_count - 1}), {info.fps:.1f} fps, "
            f"{info.width}x{info.height}")
    return text, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def build(get_store: Callable[[], object]) -> None:
    with gr.Row():
        with gr.Column():
            video = gr.File(label="Video", file_types=["video", ".avi", ".mkv", ".mov", ".mp4"], type="filepath")
            preview = gr.Image(label="First frame of the range", interactive=False)
        with gr.Column():
            summary = gr.Markdown("Upload a video (mp4, avi, mkv, mov).")
            camera = gr.Textbox(label="Camera / source name (default: file name)")
            with gr.Row():
                from_frame = gr.Number(label="From frame (0-based)", value=0, precision=0, minimum=0)
                to_frame = optional_frame("To frame (inclusive, empty = end)", "end of the video")
            stride = gr.Number(label="Every K-th frame", value=1, precision=0, minimum=1)
            go = gr.Button("Ingest", variant="primary")
    result = gr.Markdown()
    video.change(_range_info, [video, from_frame], [summary, preview], api_name=False)
    from_frame.change(_range_info, [video, from_frame], [summary, preview], api_name=False)

    def run(video_path, camera_name, start, stop, step, progress=gr.Progress()):
        if not video_path:
            return "**Upload a video first.**"
        try:
            camera = validate_camera(camera_name) if (camera_name or "").strip() else None
            a, b = checks.frame_range(start or 0, stop)
            res = ingest(video_path, get_store(), camera=camera, from_frame=a, to_frame=b,
                         stride=checks.count(step or 1, "every K-th frame"),
                         progress=lambda done, total: progress(done / max(total, 1), desc=f"frame {done}/{total}"))
        except ReidError as e:
            return f"**Error:** {md(e)}"
        verb = "Already stored" if res.reused else ("Resumed and stored" if res.resumed else "Stored")
        return (f"**{verb}:** {md(res.video.camera)}, frames {res.run.from_frame}..{res.run.to_frame}: "
                f"{res.tracks} people tracks, {res.crops} crops ({res.seconds:.1f} s).")

    go.click(run, [video, camera, from_frame, to_frame, stride], result, api_name="ingest")
