"""The Gallery tab: the enrolled identities, where and when each was seen (timeline, frames, annotated clip), and
rename / merge / delete / take a wrong segment out."""
from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from reid_core import clock
from reid_core.annotate import sightings_clip
from reid_core.enrollment import remove_from_identity
from reid_core.errors import ReidError, StoreError
from reid_core.matching import identity_segments
from reid_core.settings import Settings
from reid_core.sightings import sightings, thumbnails, timeline_figure
from reid_core.st_learn import learn_from_store
from reid_core.st_store import store_model
from ui.common import error_text, files_getter, run_button
from ui.files import AppFiles
from ui.markdown import md
from ui.viewer import FrameViewer, Look

SIGHTING_HEADERS = ["camera", "video", "track", "first frame", "last frame", "from s", "to s", "crops", "how",
                    "wall clock (UTC)", "camera timing"]
THUMBS = 40  # sightings with a thumbnail on the timeline and in the strip (the first ones in time order)


def _names(store) -> list[str]:
    return [i.name for i in store.identities()]


def build(get_store: Callable, settings: Settings, files: AppFiles | None = None, tab: gr.Tab | None = None) -> None:
    get_files = files_getter(get_store, files)
    seen = gr.State([])
    with gr.Row():
        name = gr.Dropdown(label="Identity", choices=[], value=None, interactive=True, allow_custom_value=True)
        refresh = gr.Button("Refresh", scale=0)
    message = gr.Markdown()
    thumbs = gr.Gallery(label="Identities (click one to select it)", columns=8, height=260, object_fit="contain",
                        allow_preview=False)
    table = gr.Dataframe(headers=["identity", "crops", "tracks"], interactive=False)

    gr.Markdown("### Where and when it was seen")
    with gr.Row():
        use_st = gr.Checkbox(label="Use camera timing", value=_has_model(get_store), elem_id="use-st",
                             info="Score matched tracks with the store's camera-to-camera timing model as well as "
                                  "appearance (same threshold). Needs videos ingested with a start time.")
        learn_btn = gr.Button("Learn camera timing from this store", scale=0)
    st_note = gr.Markdown()
    timeline = gr.Plot(label="Timeline (time x camera; click a thumbnail or a row to see the frame)",
                       elem_id="timeline")
    sighting_strip = gr.Gallery(label="Sightings in time order", columns=10, height="auto", object_fit="contain",
                                allow_preview=False, elem_id="sighting-thumbs")
    sighting_table = gr.Dataframe(headers=SIGHTING_HEADERS, interactive=False)
    viewer = FrameViewer("Frame (click a sighting row)", elem_id="gallery-frame")
    with gr.Row():
        clip_btn = gr.Button("Export an annotated clip (MP4) of these sightings")
        clip = gr.File(label="Annotated clip")
    clip_note = gr.Markdown()

    with gr.Accordion("Segments: take a wrong part out", open=False):
        segment_table = gr.Dataframe(headers=["segment", "camera", "first frame", "last frame", "crops"],
                                     interactive=False)
        segment_strip = gr.Gallery(label="First crop of each segment", columns=8, height="auto",
                                   object_fit="contain")
        with gr.Row():
            wrong = gr.Textbox(label="Segments or crop keys to take out (e.g. 12, 14.2)")
            remove_btn = gr.Button("Remove from identity")

    with gr.Accordion("Rename, merge, delete", open=False):
        with gr.Row():
            new_name = gr.Textbox(label="New name")
            rename_btn = gr.Button("Rename")
        with gr.Row():
            target = gr.Dropdown(label="Merge the selected identity into", choices=[], value=None,
                                 allow_custom_value=True)
            merge_btn = gr.Button("Merge")
        delete_btn = gr.Button("Delete the selected identity and its crops", variant="stop")
        with gr.Row(visible=False) as confirm_row:
            confirm_text = gr.Markdown()
            confirm_btn = gr.Button("Yes, delete", variant="stop")
            cancel_btn = gr.Button("Cancel")
    cameras = gr.Dataframe(headers=["camera", "videos", "video ids"], interactive=False)

    # ---- listing ----------------------------------------------------------------------------------------------
    def listing(msg: str = "", selected: str | None = None):
        store = get_store()
        rows, pics = [], []
        for i in store.identities():
            crops = store.get_crops(i.keys[:1]) if i.keys else []
            n_tracks = len({c.track_id for c in store.get_crops(i.keys, jpeg=False)}) if i.keys else 0
            rows.append([i.name, len(i.keys), n_tracks])
            if crops:
                pics.append((get_files().crop_file(crops[0].key, crops[0].jpeg), f"{i.name} ({len(i.keys)} crops)"))
        groups: dict[str, list[str]] = {}
        for v in store.videos():
            groups.setdefault(v.camera, []).append(v.video_id[:12])
        cams = [[c, len(v), ", ".join(v)] for c, v in groups.items()]
        names = [r[0] for r in rows]
        pick = selected if selected in names else (names[0] if names else None)
        return (msg or f"{len(rows)} identities", pics, rows, cams, gr.update(choices=names, value=pick),
                gr.update(choices=[n for n in names if n != pick], value=None))

    listing_outputs = [message, thumbs, table, cameras, name, target]

    # ---- one identity: sightings, timeline, segments ----------------------------------------------------------
    def details(identity: str | None, use_timing: bool | None = None):
        who = identity
        empty: tuple[None, list[list[object]], list[list[object]], list[object], list[object], list[object]] = (
            None, [], [], [], [], [])
        if not who:
            return "", *empty
        store = get_store()
        try:
            found = sightings(store, who, settings.threshold, settings=settings,
                              st=bool(use_timing) if use_timing is not None else None)
            segs = identity_segments(store, store.identity(who), settings.segments)
        except ReidError as err:
            return error_text("Cannot show the identity", err), *empty
        rows = [[s.camera, s.video.rsplit("/", 1)[-1], s.track, s.first_frame, s.last_frame,
                 "" if s.start_s is None else round(s.start_s, 1), "" if s.end_s is None else round(s.end_s, 1),
                 s.crops, s.source if s.score is None else f"{s.source} {s.score:.0%}", clock.iso(s.time) or "",
                 s.st] for s in found]
        seg_rows, strip = [], []
        for t, _ in segs:
            seg_rows.append([t.label, t.camera, t.frames[0], t.frames[-1], len(t.keys)])
            crop = store.get_crops(t.keys[:1])[0]
            strip.append((get_files().crop_file(crop.key, crop.jpeg), f"segment {t.label}"))
        text = (f"**{md(who)}**: seen {len(found)} time(s) on {len({s.camera for s in found})} camera(s); "
                f"{len(segs)} enrolled segment(s)")
        pics = thumbnails(store, found, THUMBS)
        tiles = [(get_files().crop_file(s.thumb, pics[s.thumb]), f"{s.camera} {clock.iso(s.time) or s.span}")
                 for s in found if s.thumb in pics]
        return text, timeline_figure(found, who, pics), rows, found, seg_rows, strip, tiles

    details_outputs = [message, timeline, sighting_table, seen, segment_table, segment_strip, sighting_strip]

    def look(found: list, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return look_at(found, row)

    def look_thumb(found: list, evt: gr.SelectData):
        # the strip shows only sightings with a thumbnail, in the same order as `found`
        shown = [i for i, s in enumerate(found) if s.thumb][:THUMBS]
        row = evt.index if isinstance(evt.index, int) else None
        return look_at(found, shown[row] if row is not None and row < len(shown) else None)

    def learn_timing(identity: str | None):
        try:
            fit = learn_from_store(get_store(), settings)
        except ReidError as err:
            return error_text("Camera timing not learned", err), gr.update(), *details(identity, None)
        pairs = ", ".join(f"{md(a)} → {md(b)} ×{n}" for (a, b), n in sorted(fit.model.counts.items())) or "none"
        note = (f"Learned camera timing from {fit.pairs} confident cross-camera match(es) among {fit.sightings} "
                f"tracks: {pairs}.")
        return note, gr.update(value=True), *details(identity, True)

    def look_at(found: list, row: int | None):
        if not found or row is None or row >= len(found):
            return None, ""
        s = found[row]
        frame = s.boxes[len(s.boxes) // 2][0] if s.boxes else s.first_frame
        return FrameViewer.render(get_store(), Look(s.video_id, frame, s.track, f"{s.identity} · track {s.track}"))

    def pick_tile(evt: gr.SelectData):
        names = _names(get_store())
        return gr.update(value=names[evt.index]) if evt.index is not None and evt.index < len(names) else gr.update()

    def make_clip(found: list, identity: str | None, progress=gr.Progress()):
        who = identity
        if not found:
            return None, "Select an identity with at least one sighting first."
        try:
            r = sightings_clip(get_store(), found, get_files().export_dir() / f"{_file_stem(who)}.mp4")
        except ReidError as err:
            return None, error_text("Cannot export the clip", err)
        note = f"{r.frames} frames from {len(found) - len(r.skipped)} sighting(s)."
        if r.skipped:
            note += " Skipped (video file no longer where it was ingested from): " + ", ".join(md(s) for s in r.skipped)
        return str(r.path), note

    # ---- changes ----------------------------------------------------------------------------------------------
    def act(fn, *args):
        try:
            msg, selected = fn(*args)
        except ReidError as err:
            return listing(error_text("Error", err), args[0] if args else None)
        return listing(msg, selected)

    def rename(a, b):
        if not a:
            raise StoreError("select an identity first")
        ident = get_store().rename_identity(a, (b or "").strip())
        get_files().forget([a], [])  # exports under the old name; the thumbnails are keyed by crop, still valid
        return f"Renamed {md(a)} to {md(ident.name)}.", ident.name

    def merge(a, b):
        if not a or not b:
            raise StoreError("select the identity to merge and the identity to merge it into")
        ident = get_store().merge_identities([a], b)
        get_files().forget([a], [])
        return f"Merged {md(a)} into {md(ident.name)}.", ident.name

    def delete(a):
        if not a:
            raise StoreError("select an identity first")
        store = get_store()
        ident = store.identity(a)
        keys = ident.keys if ident else []
        n = store.delete_identity(a)
        get_files().forget([ident.name if ident else a], keys)  # its thumbnails and exports go with it
        return f"Deleted {md(a)} and {n} crops.", None

    def ask_delete(a):
        if not a:
            return gr.update(visible=False), "", "**Select an identity first.**"
        return gr.update(visible=True), f"Delete **{md(a)}** and all its crops? This cannot be undone.", ""

    def remove(identity, segments):
        try:
            left, n = remove_from_identity(get_store(), identity or "", (segments or "").replace(",", " ").split())
        except ReidError as err:
            return error_text("Error", err), *details(identity)[1:]
        text, *rest = details(left.name)
        return f"Removed {n} crop(s) from {md(left.name)}. " + text, *rest

    refresh.click(listing, None, listing_outputs, api_name="gallery_list")
    if tab is not None:
        # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
        tab.select(listing, None, listing_outputs, api_name=False)  # type: ignore[arg-type]  # thumbnails are there when the tab opens
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    thumbs.select(pick_tile, None, name, api_name=False)  # type: ignore[arg-type]
    name.change(details, [name, use_st], details_outputs, api_name="gallery_identity")
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    use_st.input(details, [name, use_st], details_outputs, api_name=False)  # type: ignore[arg-type]
    learn_btn.click(learn_timing, [name], [st_note, use_st, *details_outputs], api_name="st_learn")
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    sighting_table.select(look, [seen], viewer.outputs, api_name=False)  # type: ignore[arg-type]
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    sighting_strip.select(look_thumb, [seen], viewer.outputs, api_name=False)  # type: ignore[arg-type]
    run_button(clip_btn, make_clip, [seen, name], [clip, clip_note], "gallery_clip", progress_on=clip)
    remove_btn.click(remove, [name, wrong], details_outputs, api_name="gallery_remove")
    def rename_endpoint(identity, new_name):
        return act(rename, identity, new_name)

    def merge_endpoint(identity, into):
        return act(merge, identity, into)

    def delete_endpoint(identity):
        return act(delete, identity)

    rename_btn.click(rename_endpoint, [name, new_name], listing_outputs, api_name="gallery_rename")
    merge_btn.click(merge_endpoint, [name, target], listing_outputs, api_name="gallery_merge")
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    delete_btn.click(ask_delete, [name], [confirm_row, confirm_text, message], api_name=False)  # type: ignore[arg-type]
    # gradio handles api_name=False (a private endpoint) but annotates api_name as str | None
    cancel_btn.click(lambda: gr.update(visible=False), None, confirm_row, api_name=False)  # type: ignore[arg-type]
    confirm_btn.click(delete_endpoint, [name], listing_outputs, api_name="gallery_delete").then(
        lambda: gr.update(visible=False), None, confirm_row, api_name=False)


def _has_model(get_store: Callable) -> bool:
    """Camera timing starts on where the store has a model (a damaged model file: off; using it says why)."""
    try:
        return store_model(get_store()) is not None
    except ReidError:
        return False


def _file_stem(name: str | None) -> str:
    """An identity name as a safe file name (names are validated, but may hold spaces and apostrophes)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in (name or "identity")) or "identity"
