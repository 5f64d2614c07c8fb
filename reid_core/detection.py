"""Person detection: ultralytics YOLOv8n (INT8 OpenVINO export), person class only."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from reid_core.precision import effective, ov_config
from reid_core.types import Box, Detection
from reid_core.weights import resolve

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

PERSON_CLASS = 0


@dataclass(frozen=True)
class DetectorConfig:
    model: str = "yolov8n_int8_openvino"
    # Low enough that ByteTrack's second association sees weak boxes (occlusions); tracks still need min_score to start.
    conf: float = 0.1
    min_height: int = 24  # px; smaller people give crops too blurry to embed usefully
    imgsz: int = 640


class PersonDetector:
    """Loaded once; `detect` takes BGR frames. The export has a fixed batch of 1, so frames run one at a time
    (a list call to ultralytics was measured slower than a loop here)."""

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        from ultralytics import YOLO

        self.config = config
        files = resolve(config.model)
        self._model = YOLO(str(files.path.parent), task="detect")
        self._lock = threading.Lock()
        self.precision = self._pin_precision(files.path)

    def _pin_precision(self, xml) -> str:
        """Recompile ultralytics' OpenVINO model with the process's precision ($REID_PRECISION): ultralytics
        compiles with OpenVINO's default, which is bf16 for the INT8 model's float layers on bf16 CPUs.
        The backend only exists after a first prediction, which doubles as the warm-up."""
        from functools import partial

        import openvino as ov

        self._model.predict(np.zeros((64, 64, 3), np.uint8), conf=self.config.conf, imgsz=self.config.imgsz,
                            verbose=False)
        # ultralytics annotates Model.predictor as None only; the predict() call above has set it
        backend = getattr(self._model.predictor.model, "backend", None)  # type: ignore[attr-defined]
        compile_model = getattr(backend, "compile_model", None)
        if not isinstance(compile_model, partial):  # not the OpenVINO backend: nothing to pin
            return "unknown"
        assert backend is not None  # compile_model came from it
        keywords = dict(compile_model.keywords)
        keywords["config"] = {**keywords.get("config", {}), **ov_config()}
        backend.compile_model = partial(compile_model.func, **keywords)
        backend.ov_compiled_model = backend.compile_model(ov.Core().read_model(str(xml)))
        return effective(backend.ov_compiled_model)

    def detect(self, frame_bgr: np.ndarray, frame_index: int = 0) -> list[Detection]:
        c = self.config
        with self._lock:
            # predict() without stream=True returns a list of Results, but ultralytics annotates the streaming
            # iterator and raw tensors into the same return type
            results = cast("list[Results]", self._model.predict(frame_bgr, classes=[PERSON_CLASS], conf=c.conf,
                                                                imgsz=c.imgsz, verbose=False))
        boxes = results[0].boxes
        assert boxes is not None  # a detect model's results always carry boxes
        # Boxes.xyxy/conf are annotated Tensor | ndarray; a predictor's boxes are tensors
        xyxy = boxes.xyxy.cpu().numpy()  # type: ignore[union-attr]
        conf = boxes.conf.cpu().numpy()  # type: ignore[union-attr]
        out = []
        for (x1, y1, x2, y2), s in zip(xyxy, conf):
            if y2 - y1 >= c.min_height:
                out.append(Detection(frame_index, Box.from_xyxy(x1, y1, x2, y2), float(s)))
        # Detector output order is by score; sort by score then position so box indices are stable run to run.
        out.sort(key=lambda d: (-round(d.score, 4), d.box.x, d.box.y))
        return out
