"""What the app does before the first click: check the model files, load the models, prepare the example clip.

A missing weight file is said on the first screen (not as an error on the first action), and the models are
loaded at start-up so the first Enroll or Identify does not pay for it (about 7 s on a laptop CPU)."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from reid_core.chunks import models_for
from reid_core.errors import ReidError, WeightsError
from reid_core.offline import cache_dir
from reid_core.settings import IngestSettings
from reid_core.weights import resolve

# The bundled-or-generated example: the first seconds of PETS09-S2L1 when the data is beside the repo (it is not
# redistributable, so it is never committed), or any clip named by $REID_EXAMPLE_VIDEO.
EXAMPLE_SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pets09_s2l1" / "vtest.avi"
EXAMPLE_FRAMES = 120  # 17 s at PETS' 7 fps: several people cross, and it ingests in seconds


def missing_weights(settings: IngestSettings) -> list[str]:
    """One message per model the app needs whose files cannot be found (naming the file and the places searched)."""
    out = []
    for name in (settings.detector.model, settings.embedder):
        try:
            resolve(name)
        except WeightsError as err:
            out.append(str(err))
        except ReidError:
            pass  # a trained embedder's name: load_embedder reports it
    return out


def preload(settings: IngestSettings, background: bool = False) -> threading.Thread | None:
    """Load (and compile) the detector, the embedder and the attribute model once, now."""
    def load():
        from reid_core.attributes import load_attribute_model

        try:
            models_for(settings)
            load_attribute_model()
        except ReidError:
            pass  # said on the first screen by missing_weights(), and again on use
    if not background:
        load()
        return None
    thread = threading.Thread(target=load, name="reid-preload", daemon=True)
    thread.start()
    return thread


def example_clip(frames: int = EXAMPLE_FRAMES) -> Path | None:
    """A short MP4 for the app's examples, cut once from $REID_EXAMPLE_VIDEO or the PETS clip; None if neither
    exists. Kept in the cache (not the app's temp folder, whose files expire)."""
    import cv2

    source = Path(os.environ.get("REID_EXAMPLE_VIDEO") or EXAMPLE_SOURCE)
    if not source.is_file():
        return None
    out = cache_dir() / "examples" / f"{source.stem}_first{frames}.mp4"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    tmp = out.with_suffix(f".{os.getpid()}.part.mp4")
    writer = None
    try:
        for _ in range(frames):
            ok, image = cap.read()
            if not ok:
                break
            if writer is None:
                h, w = image.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
            writer.write(image)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if writer is None:
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, out)  # atomic: two apps starting together never see half a clip
    return out
