"""Helpers for both tiers: paths, the `reid` command and a served Gradio app. Nothing here needs data or models.

tests/unit/ runs anywhere (no data, no models, no network); tests/integration/ needs the real clip and weights in
../shared, and its conftest holds the real-data paths and fixtures (pets_store, store_copy, cli_env) and the guard
that stops the run with one clear error when ../shared is missing."""
from __future__ import annotations

import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


def pytest_sessionstart(session):
    ARTIFACTS.mkdir(exist_ok=True)


def reid_cli() -> list[str]:
    exe = shutil.which("reid", path=str(Path(os.sys.executable).parent))
    return [exe] if exe else [os.sys.executable, "-m", "reid_core"]


@contextmanager
def served(demo):
    """Launch a Gradio Blocks on a free local port with the queue on; yield its URL; close it afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        css=getattr(demo, "reid_css", None))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()

