"""reid-studio Gradio app (Hugging Face Spaces style): a thin shell over reid_core.

    python app.py          # or `make run`; REID_STORE=DIR for another store, REID_AUTH=user:pass for a login
    REID_EMBEDDER=site1 python app.py   # use a model trained with `reid adapt --name site1` (or `reid train`)

Hardening (docs/security.md): logins throttled and locked out (ui/auth.py), uploads capped at REID_MAX_UPLOAD_MB,
uploads/thumbnails/exports kept in the app's own folder with a retention period (ui/files.py).
"""
from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

import reid_core  # noqa: F401  (offline switches before gradio is imported)
from reid_core.checks import positive_setting
from reid_core.errors import InputError
from reid_core.settings import Settings
from reid_core.store import Store
from ui import auth as login
from ui import enroll, gallery, identify, search_image, startup, verify
from ui import ingest as ingest_tab
from ui import search_text as search_text_tab
from ui.files import AppFiles
from ui.markdown import md

TITLE = "reid-studio: find the same person again across video"
DEFAULT_MAX_UPLOAD_MB = 500  # a long CCTV clip; above this a browser upload is more likely a mistake or an attack


INTRO = ("Enroll a person from a stretch of footage, then **Verify** a claim, **Identify** everyone in a new clip "
         "(strangers come back *unknown*), **Search** by image or description, and see in the **Gallery** where "
         "and when each person was seen. Frame numbers are 0-based; an empty *To frame* means the end of the video.")
# Gallery captions are a person's name and a count: let them wrap instead of being cut to a few characters.
CSS = ".thumbnail-item .caption, .caption-label { white-space: normal !important; overflow: visible !important; " \
      "text-overflow: clip !important; font-size: 0.8em; }"


def build_app(store_path: str | Path | None = None, preload: bool = True,
              settings: Settings | None = None) -> gr.Blocks:
    """The app on a store ($REID_STORE or ./gallery unless given), with settings read once, here."""
    settings = (settings or Settings.from_env()).with_store(store_path) if store_path else \
        (settings or Settings.from_env())
    path = settings.store
    files = AppFiles.for_store(path)
    files.use_for_gradio()  # before any component exists: Gradio reads it when they are created
    files.start_sweeping()
    missing = startup.missing_weights(settings.ingest)
    if preload and not missing:
        startup.preload(settings.ingest)
    example = startup.example_clip() if not missing else None

    def get_store() -> Store:
        return Store(path)

    with gr.Blocks(title="reid-studio") as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}\n\nStore: `{md(path)}` · embedder: `{settings.embedder}`")
        if missing:
            gr.Markdown("## ⚠️ Model files are missing: nothing can be processed until they are in place\n"
                        + "\n\n".join(f"```\n{m}\n```" for m in missing)
                        + "\n\nSee weights/README.md, then restart the app.")
        with gr.Tab("Enroll"):
            enroll.build(get_store, settings, files)
        with gr.Tab("Verify"):
            verify.build(get_store, settings, files)
        with gr.Tab("Identify"):
            identify.build(get_store, settings, files, example)
        with gr.Tab("Search"):
            search_text_tab.build(get_store)
            search_image.build(get_store, settings, files)
        with gr.Tab("Gallery") as gallery_tab:
            gallery.build(get_store, settings, files, gallery_tab)
        with gr.Tab("Ingest"):
            ingest_tab.build(get_store, settings, example)
    demo.reid_files = files  # for launch_options and tests
    demo.reid_css = CSS  # Gradio 6 takes CSS at launch
    return demo


def max_upload_mb() -> float:
    return positive_setting("REID_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB, "megabytes")


def launch_options(demo: gr.Blocks) -> dict:
    """The keyword arguments of `demo.launch` that make the app safe to expose: throttled login (when accounts
    are configured), upload cap, the app's own file folder, no tracebacks shown to users."""
    from starlette.middleware import Middleware

    accounts = login.load_accounts()
    files: AppFiles = demo.reid_files  # type: ignore[attr-defined]  # gr.Blocks does not declare it: build_app sets it
    return {"auth": login.make_auth(accounts) if accounts else None,
            # Gradio takes bytes; it answers an upload over the cap with 413 and its upload widget says so
            "max_file_size": int(max_upload_mb() * 1024 * 1024),
            "allowed_paths": [str(files.root)],
            "app_kwargs": {"middleware": [Middleware(login.ClientAddress)]},
            "show_error": False,
            "css": demo.reid_css}  # type: ignore[attr-defined]  # gr.Blocks does not declare it: build_app sets it


def main() -> None:
    demo = build_app()
    demo.queue(default_concurrency_limit=2).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), **launch_options(demo))


if __name__ == "__main__":
    try:
        main()
    except InputError as e:  # a bad setting: one line, like the CLI
        raise SystemExit(f"error: {e}") from None
