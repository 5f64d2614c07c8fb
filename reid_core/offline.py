"""Offline switches. Imported first by reid_core so that ultralytics, gradio and huggingface never try the network.

The machines this runs on reach no model hub; a library that tries to download (fonts, weights, telemetry, update
checks) would hang or fail late. These must be in the environment before those libraries are imported.
"""
import os
from pathlib import Path

_CACHE = Path(os.environ.get("REID_CACHE_DIR", Path.home() / ".cache" / "reid-studio"))

OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
    "YOLO_VERBOSE": "False",
    "YOLO_CONFIG_DIR": str(_CACHE / "ultralytics"),
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "OPENVINO_TELEMETRY_DISABLE": "1",
    "OPENCV_LOG_LEVEL": "ERROR",  # OpenCV prints backend probing warnings for every non-video file otherwise
}


def apply() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)


def cache_dir() -> Path:
    """Where derived artefacts (converted models) are kept; never inside the repository."""
    _CACHE.mkdir(parents=True, exist_ok=True)
    return _CACHE


apply()
