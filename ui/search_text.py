"""The app's Search-by-text part: a prompt builder, free text, and a gallery of matching tracks with captions.

`build(get_store)` creates its components inside the caller's `with gr.Tab(...)` block and registers the search
as API endpoint "search_text" (prompt, engine, top_k) -> (gallery, summary markdown, results table), so
gradio_client can call it. `get_store` returns the Store to search; the default opens $REID_STORE or ./gallery.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import cv2
import gradio as gr
import numpy as np

from reid_core.attributes import COLOURS
from reid_core.crops import decode_image
from reid_core.errors import ReidError
from ui.common import error_text

if TYPE_CHECKING:
    from reid_core.store import Store

ANY = "any"
GENDERS = [ANY, "man", "woman"]
COLOUR_CHOICES = [ANY] + [c for c in COLOURS] + ["light blue", "dark blue", "navy", "beige"]
UPPER_GARMENTS = ["top", "jacket", "coat", "shirt", "t-shirt", "hoodie", "sweater"]
LOWER_GARMENTS = ["trousers", "jeans", "shorts", "skirt"]
CARRYING = [ANY, "a bag", "a backpack", "no bag", "no backpack", "nothing"]
HATS = [ANY, "a hat", "no hat"]
HAIR = [ANY, "long hair", "short hair"]
ENGINE_CHOICES = ["auto", "attributes", "learned", "clip"]
TABLE_HEADERS = ["rank", "similarity %", "video", "frame", "track", "box x,y,w,h", "caption", "why"]
THUMB_H = 256  # stored crops are often under 100 px tall; shown enlarged so clothing is visible


def compose_prompt(gender: str = ANY, upper_colour: str = ANY, upper_garment: str = "top", lower_colour: str = ANY,
                   lower_garment: str = "trousers", carrying: str = ANY, hat: str = ANY, hair: str = ANY,
                   extra: str = "") -> str:
    """The picked tags as one plain sentence the parser reads: 'woman in a red jacket and blue jeans, with a
    bag'. Tags left at "any" say nothing."""
    clothes = []
    if upper_colour != ANY:
        clothes.append(f"a {upper_colour} {upper_garment}")
    if lower_colour != ANY:
        clothes.append(f"{lower_colour} {lower_garment}")
    elif lower_garment in ("shorts", "skirt", "jeans"):  # the garment alone still says something
        clothes.append(lower_garment if lower_garment != "skirt" else "a skirt")
    who = gender if gender != ANY else "person"
    text = who + (" in " + " and ".join(clothes) if clothes else "")
    withs, withouts = [], []
    for choice in (carrying, hat, hair):
        if choice == ANY:
            continue
        if choice == "nothing":
            withouts.append("not carrying anything")
        elif choice.startswith("no "):
            withouts.append("without a " + choice[3:])
        else:
            withs.append(choice)
    if withs:
        text += ", with " + " and ".join(withs)
    if withouts:
        text += ", " + ", ".join(withouts)
    if extra and extra.strip():
        text += ", " + extra.strip()
    return "" if text == "person" else text


def _thumbnail(jpeg: bytes) -> np.ndarray:
    bgr = decode_image(jpeg)
    h, w = bgr.shape[:2]
    scale = THUMB_H / max(h, 1)
    bgr = cv2.resize(bgr, (max(1, round(w * scale)), THUMB_H), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def clip_status() -> str:
    from reid_core.clip_engine import checkpoint_from_env

    path = checkpoint_from_env()
    if path is None:
        return ("**CLIP engine:** not available. It needs a CLIP checkpoint and none ships with reid-studio; set "
                "`REID_CLIP_CHECKPOINT` to a local file (and `REID_CLIP_MODEL` for open_clip-format files) and "
                "restart. The attribute engine below works offline.")
    if not path.is_file():
        return f"**CLIP engine:** `REID_CLIP_CHECKPOINT` points at `{path}`, which does not exist."
    return f"**CLIP engine:** checkpoint `{path}` (used by *auto* together with attributes, or alone by *clip*)."


class _Searchers:
    """One TextSearcher per store folder and engine setting, so models and caches load once per app."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_key: dict = {}

    def get(self, store, engine: str):
        from reid_core.text_search import searcher_for

        key = (str(Path(store.path).resolve()), engine)
        with self._lock:
            if key not in self._by_key:
                self._by_key[key] = searcher_for(store, engine)
            return self._by_key[key]


def _default_store():
    from reid_core.settings import Settings
    from reid_core.store import Store

    return Store(Settings.from_env().store)


def build(get_store: Callable[[], object] | None = None) -> None:
    """Create the Search-by-text components in the current Blocks context (the caller's Tab)."""
    get_store = get_store or _default_store
    searchers = _Searchers()

    gr.Markdown("### Find people by a description\nPick tags or type freely (\"man in a red hoodie with a "
                "backpack, no hat\"). Results are tracks, best first; each caption is what the attribute model "
                "saw, so you can check why it matched.")
    gr.Markdown(clip_status())
    with gr.Row():
        gender = gr.Dropdown(GENDERS, value=ANY, label="Gender")
        upper_colour = gr.Dropdown(COLOUR_CHOICES, value=ANY, label="Upper colour")
        upper_garment = gr.Dropdown(UPPER_GARMENTS, value="top", label="Upper garment")
        lower_colour = gr.Dropdown(COLOUR_CHOICES, value=ANY, label="Lower colour")
        lower_garment = gr.Dropdown(LOWER_GARMENTS, value="trousers", label="Lower garment")
    with gr.Row():
        carrying = gr.Dropdown(CARRYING, value=ANY, label="Bag")
        hat = gr.Dropdown(HATS, value=ANY, label="Hat")
        hair = gr.Dropdown(HAIR, value=ANY, label="Hair")
        extra = gr.Textbox(label="More words", placeholder="e.g. white shoes", scale=2)
    prompt = gr.Textbox(label="Prompt (built from the tags; edit or type your own)", lines=2,
                        placeholder="woman in a red top and blue jeans, with a bag")
    with gr.Row():
        engine = gr.Radio(ENGINE_CHOICES, value="auto", label="Engine")
        top_k = gr.Slider(1, 100, value=12, step=1, label="Results")
        search_btn = gr.Button("Search", variant="primary")
        clear_btn = gr.Button("Clear tags")
    summary = gr.Markdown()
    gallery = gr.Gallery(label="Matches", columns=4, height="auto", object_fit="contain")
    table = gr.Dataframe(headers=TABLE_HEADERS, label="Details", interactive=False, wrap=True)

    tags: list[gr.Dropdown | gr.Textbox] = [gender, upper_colour, upper_garment, lower_colour,
                                           lower_garment, carrying, hat, hair, extra]
    for t in tags:
        t.change(compose_prompt, inputs=tags, outputs=prompt, api_visibility="private")
    clear_btn.click(lambda: [ANY, ANY, "top", ANY, "trousers", ANY, ANY, ANY, "", ""], outputs=tags + [prompt],
                    api_visibility="private")

    def search(query: str, engine: str, top_k: float, progress=gr.Progress()):
        if not query or not query.strip():
            return [], "Describe someone first: pick a tag or type a description.", _empty_table()
        try:
            store = cast("Store", get_store())  # a Store, or a stand-in with its API
            # the first search of a store describes its tracks (then cached): show how far that has got
            result = searchers.get(store, engine).search(
                query, top_k=int(top_k), engine=engine,
                progress=lambda done, total: progress((done, total), desc="describing tracks", unit="crops"))
            crops = {c.key: c for c in store.get_crops([h.crop_key for h in result.hits], jpeg=True)}
        except ReidError as e:  # tell the user, keep the app alive
            return [], error_text("Cannot search", e), _empty_table()
        items, rows = [], []
        for rank, h in enumerate(result.hits, 1):
            pct = h.score * 100
            # the description first: tiles show one line, and it is the part that says why this person matched
            label = f"{pct:.0f}% · {h.caption} · {Path(h.video).name} frame {h.frame} · track {h.track_id}"
            jpeg = crops[h.crop_key].jpeg
            assert jpeg is not None, "get_crops(jpeg=True) fills every crop's jpeg"
            items.append((_thumbnail(jpeg), label))
            rows.append([rank, round(pct, 1), Path(h.video).name, h.frame, h.track_id,
                         ",".join(f"{v:.0f}" for v in h.box.as_list()), h.caption, h.explanation()])
        lines = [f"*{text}*" if label == "note" else f"**{label.capitalize()}:** {text}"
                 for label, text in result.summary()]
        if result.engine == "clip":
            lines.append("*Similarity is the CLIP cosine between the text and the track.*")
        return items, "  \n".join(lines), rows or _empty_table()

    search_btn.click(search, inputs=[prompt, engine, top_k], outputs=[gallery, summary, table],
                     api_name="search_text")
    prompt.submit(search, inputs=[prompt, engine, top_k], outputs=[gallery, summary, table],
                  api_visibility="private")


def _empty_table() -> list[list]:
    return [[None] * len(TABLE_HEADERS)][:0]
