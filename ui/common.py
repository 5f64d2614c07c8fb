"""What the tabs share: video inputs, thumbnails, progress, error text, and a Run button that cannot run twice."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import gradio as gr
import numpy as np

from reid_core import checks
from reid_core.errors import ReidError
from reid_core.settings import Settings
from ui.fields import optional_frame
from ui.files import AppFiles
from ui.markdown import md

VIDEO_TYPES = ["video", ".avi", ".mkv", ".mov", ".mp4"]


def error_text(what: str, err: Exception) -> str:
    """`**Not enrolled:** <message>; <what to do in the app>` (never a CLI flag, a traceback or a server path)."""
    text = err.for_app() if isinstance(err, ReidError) else str(err)
    return f"**{what}:** {md(text)}"


def files_getter(get_store: Callable, files: AppFiles | None) -> Callable[[], AppFiles]:
    """The app's temp folder (ui/files.py); built lazily from the store path when the caller gave none."""
    cache: list[AppFiles] = [files] if files is not None else []

    def get() -> AppFiles:
        if not cache:
            cache.append(AppFiles.for_store(get_store().path))
        return cache[0]

    return get


def thumbs(files: AppFiles, store, keys: list[str], label: str) -> list[tuple[str, str]]:
    """Crops as files in the app's folder (so deleting an identity can delete them), with captions."""
    return [(files.crop_file(c.key, c.jpeg), f"{label} · frame {c.frame}") for c in store.get_crops(keys)]


def face_thumbs(store, keys: list[str], label: str) -> list[tuple[np.ndarray, str]]:
    """Aligned faces found on these crops (reid_core/face_evidence.py), as RGB images with captions."""
    from reid_core.face_evidence import THUMB_KIND

    found = store.get_annotations(THUMB_KIND, keys)
    return [(_rgb(found[k]), f"{label} · face") for k in keys if k in found]


def photo_face_thumbs(ident) -> list[tuple[np.ndarray, str]]:
    """An identity's enrolled face photos (aligned faces), as RGB images with captions."""
    from reid_core.face_evidence import thumb_bytes

    return [(_rgb(thumb_bytes(f)), f"{ident.name} · {f.source}") for f in ident.faces]


def _rgb(jpeg: bytes) -> np.ndarray:
    from reid_core.crops import decode_image

    return decode_image(jpeg)[:, :, ::-1]


def video_inputs():
    video = gr.File(label="Video", file_types=VIDEO_TYPES, type="filepath")
    with gr.Row():
        start = optional_frame("From frame (0-based, empty = start)", "start of the video")
        stop = optional_frame("To frame (inclusive, empty = end)", "end of the video")
    return video, start, stop


APP_FRAME_NAMES = ("From frame", "To frame")


def frame_range(start, stop) -> tuple[int, int | None]:
    a, b = checks.frame_range(start, stop, APP_FRAME_NAMES)
    return a or 0, b


def progress_of(progress: gr.Progress) -> Callable[[int, int], None]:
    return lambda done, total: progress(done / max(total, 1), desc=f"frame {done}/{total}")


def threshold_slider(settings: Settings) -> gr.Slider:
    help_text = (f"Similarity needed to name someone (cosine of mean appearance features). Default "
                 f"{settings.threshold:.2f}: calibrated on PETS09-S2L1 for {settings.embedder} (docs/identify.md). "
                 f"Higher = fewer strangers named, more people missed.")
    return gr.Slider(0.3, 1.0, value=settings.threshold, step=0.01, label="Threshold", info=help_text)


def run_button(button: gr.Button, fn: Callable, inputs: Sequence, outputs: Sequence, api_name: str,
               progress_on: gr.components.Component | None = None):
    """`button` starts `fn`, greyed out until it has finished (or failed), so a double-click or an impatient second
    click cannot start the same job twice; the progress bar shows on one component (`progress_on`), not on every
    output. Returns the job's event, for chaining."""
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    lock = button.click(lambda: gr.update(interactive=False), None, button, queue=False, api_name=False)  # type: ignore[arg-type]
    job = lock.then(fn, list(inputs), list(outputs), api_name=api_name,
                    show_progress_on=progress_on if progress_on is not None else None)
    job.then(lambda: gr.update(interactive=True), None, button, queue=False, api_name=False)
    return job
