"""reid-studio Gradio app (Hugging Face Spaces style): a thin shell over reid_core.

    python app.py          # or `make run`; REID_STORE=DIR for another store, REID_AUTH=user:pass for a login
    REID_EMBEDDER=site1 python app.py   # use a model trained with `reid adapt --name site1` (or `reid train`)
"""
from __future__ import annotations

import os
from pathlib import Path

import reid_core  # noqa: F401  (offline switches before gradio is imported)
import gradio as gr

from reid_core.ingest import DEFAULT_SETTINGS
from reid_core.store import Store
from ui import ingest as ingest_tab
from ui import people
from ui import search_text as search_text_tab

TITLE = "reid-studio: find the same person again across video"


def build_app(store_path: str | Path | None = None) -> gr.Blocks:
    path = Path(store_path or os.environ.get("REID_STORE") or "gallery")

    def get_store() -> Store:
        return Store(path)

    with gr.Blocks(title="reid-studio") as demo:
        gr.Markdown(f"# {TITLE}\nStore: `{path}` · embedder: `{DEFAULT_SETTINGS.embedder}` "
                    f"(set `REID_EMBEDDER` to a trained model's name to use it)")
        with gr.Tab("Enroll"):
            people.build_enroll(get_store)
        with gr.Tab("Verify"):
            people.build_verify(get_store)
        with gr.Tab("Identify"):
            people.build_identify(get_store)
        with gr.Tab("Search"):
            search_text_tab.build(get_store)
            people.build_search_image(get_store)
        with gr.Tab("Gallery"):
            people.build_gallery(get_store)
        with gr.Tab("Ingest"):
            ingest_tab.build(get_store)
    return demo


def _auth():
    spec = os.environ.get("REID_AUTH")
    if spec and ":" in spec:
        user, password = spec.split(":", 1)
        return [(user, password)]
    file = os.environ.get("REID_AUTH_FILE")
    if file:
        pairs = [line.strip().split(":", 1) for line in Path(file).read_text().splitlines() if ":" in line]
        return [(u, p) for u, p in pairs]
    return None


if __name__ == "__main__":
    build_app().queue(default_concurrency_limit=2).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), auth=_auth(), show_error=False)
