"""The frame viewer: click a result (a track, a crop, a sighting) and see the whole frame with the box and name."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from reid_core import clock
from reid_core.annotate import frame_view
from reid_core.errors import ReidError
from ui.common import error_text
from ui.markdown import md


@dataclass(frozen=True)
class Look:
    """What to show: a frame of a stored video and the track to highlight in it."""

    video_id: str
    frame: int
    track_label: str = ""
    caption: str = ""
    path: str = ""  # the file in hand (an upload), read instead of the path the video was first ingested from


class FrameViewer:
    """An image and a caption; `render(store, look, decisions)` draws every box of that frame (decisions: the
    result list the look came from, so names and scores are the ones the user is looking at)."""

    def __init__(self, label: str = "Frame (click a result above)", elem_id: str | None = None):
        self.image = gr.Image(label=label, interactive=False, height=420, elem_id=elem_id)
        self.caption = gr.Markdown()

    @property
    def outputs(self) -> list:
        return [self.image, self.caption]

    @staticmethod
    def render(store, look: Look | None, decisions=None) -> tuple:
        if look is None:
            return None, ""
        try:
            image = frame_view(store, look.path or look.video_id, look.frame, decisions,
                               highlight=look.track_label or None)
        except ReidError as err:
            return None, error_text("Cannot show the frame", err)
        video = store.video(look.video_id)
        when = f" · {look.frame / video.fps:.1f} s" if video and video.fps else ""
        wall = clock.iso(clock.frame_time(video.start, video.fps, look.frame)) if video else None
        when += f" · {wall}" if wall else ""
        where = f"{md(video.camera)} · " if video else ""
        return image, f"{where}frame {look.frame}{when}" + (f" · {md(look.caption)}" if look.caption else "")
