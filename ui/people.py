"""The app's Enroll, Verify, Identify, Search-by-image and Gallery tabs: thin shells over reid_core.matching."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import gradio as gr

from reid_core import checks
from reid_core.errors import InputError, ReidError
from reid_core.enrollment import enroll, remove_from_identity
from reid_core.matching import (DEFAULT_THRESHOLD, UNKNOWN, decisions_json, export, filter_hits, hits_json,
                                 identify, identity_segments, refine, search_image, verify, video_tracks)
from reid_core.names import validate_new_name
from reid_core.types import Box
from reid_core.video import probe, read_frame
from ui.fields import optional_frame
from ui.files import AppFiles
from ui.markdown import md

VIDEO_TYPES = ["video", ".avi", ".mkv", ".mov", ".mp4"]
THRESHOLD_HELP = (f"Similarity needed to name someone (cosine of mean appearance features). Default "
                  f"{DEFAULT_THRESHOLD:.2f}: the equal-error point of genuine/impostor scores on PETS09-S2L1, "
                  f"leave-one-person-out. Higher = fewer strangers named, more people missed.")


def _files(get_store: Callable, files: AppFiles | None) -> Callable[[], AppFiles]:
    """The app's temp folder (ui/files.py); built lazily from the store path when the caller gave none."""
    cache: list[AppFiles] = [files] if files is not None else []

    def get() -> AppFiles:
        if not cache:
            cache.append(AppFiles.for_store(get_store().path))
        return cache[0]

    return get


def _thumbs(files: AppFiles, store, keys: list[str], label: str) -> list[tuple[str, str]]:
    """Crops as files in the app's folder (so deleting an identity can delete them), with captions."""
    return [(files.crop_file(c.key, c.jpeg), f"{label} · frame {c.frame}") for c in store.get_crops(keys)]


def _range(start, stop) -> tuple[int, int | None]:
    a, b = checks.frame_range(start, stop)
    return a or 0, b


def _score(value, what: str) -> float:
    return checks.score(value, what)


def _video_inputs():
    video = gr.File(label="Video", file_types=VIDEO_TYPES, type="filepath")
    with gr.Row():
        start = gr.Number(label="From frame (0-based)", value=0, precision=0, minimum=0)
        stop = optional_frame("To frame (inclusive, empty = end)", "end of the video")
    return video, start, stop


def build_enroll(get_store: Callable, files: AppFiles | None = None) -> None:
    get_files = _files(get_store, files)
    gr.Markdown("Enroll a person: upload footage, set the frame range, and if several people are in it, click the "
                "person on the preview frame.")
    with gr.Row():
        with gr.Column():
            video, start, stop = _video_inputs()
            name = gr.Textbox(label="Name (letters, digits, spaces, . _ - ')")
            at_frame = gr.Number(label="Pick at frame", value=0, precision=0, minimum=0)
            click = gr.Textbox(label="Picked point x,y (click the preview)", interactive=True)
            go = gr.Button("Enroll", variant="primary")
        with gr.Column():
            preview = gr.Image(label="Preview: click the person to enroll", interactive=False)
            message = gr.Markdown()
            sample = gr.Gallery(label="Enrolled crops", columns=6, height="auto", object_fit="contain")

    def show(path, frame):
        if not path:
            return None, ""
        try:
            info = probe(path)
            f = min(checks.frame(frame or 0, "pick frame"), info.frame_count - 1)
            image = read_frame(path, f)
        except ReidError as e:
            return None, f"**Cannot use this file:** {md(e)}"
        people = [t for t in video_tracks(get_store(), info.video_id, f, f)] if get_store().video(info.video_id) else []
        for t in people:  # footage already in the store: show who can be picked
            b = t.boxes[0]
            cv2.rectangle(image, (int(b.x), int(b.y)), (int(b.x + b.w), int(b.y + b.h)), (0, 200, 255), 2)
            cv2.putText(image, t.label, (int(b.x), max(12, int(b.y) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 200, 255), 1)
        hint = (f"; {len(people)} people already tracked at frame {f} (boxes): click one" if people else
                "; click the person to enroll (not needed when only one person is in the range)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), f"{info.frame_count} frames (0..{info.frame_count - 1}){hint}"

    def picked(evt: gr.SelectData):
        return f"{evt.index[0]},{evt.index[1]}"

    def run(path, a, b, who, frame, point, progress=gr.Progress()):
        if not path:
            return "**Upload a video first.**", []
        try:
            box = None
            if point:
                x, y = (float(v) for v in point.split(","))
                box = Box(x, y, 0, 0)
            s, e = _range(a, b)
            at = checks.frame(frame, "pick frame") if box else None
            store = get_store()
            if store.identity(who or "") is None:  # a new name: refuse look-alikes before the ingest, not after
                validate_new_name(who or "", [i.name for i in store.identities()])
            r = enroll(store, path, who, s, e, at, box,
                       progress=lambda d, t: progress(d / max(t, 1), desc=f"frame {d}/{t}"))
        except (ReidError, ValueError) as err:
            return f"**Not enrolled:** {md(err)}", []
        text = (f"**Enrolled {md(r.identity.name)}**: +{len(r.added_keys)} crops, frames {r.frame_span[0]}.."
                f"{r.frame_span[1]} ({r.visit_share:.0%} of those frames) from segment(s) {', '.join(r.segments)}; "
                f"{len(r.identity.keys)} in total.")
        if r.left_out:
            text += f"  \n{len(r.left_out)} crop(s) that do not look like the rest were left out."
        text += "".join(f"  \n**Warning:** {md(w)}" for w in r.warnings)
        return text, _thumbs(get_files(), get_store(), r.sample_keys, r.identity.name)

    video.change(show, [video, at_frame], [preview, message], api_name=False)
    at_frame.change(show, [video, at_frame], [preview, message], api_name=False)
    preview.select(picked, None, click, api_name=False)
    go.click(run, [video, start, stop, name, at_frame, click], [message, sample], api_name="enroll")


def build_verify(get_store: Callable, files: AppFiles | None = None) -> None:
    get_files = _files(get_store, files)
    with gr.Row():
        with gr.Column():
            video, start, stop = _video_inputs()
            claim = gr.Dropdown(label="Claimed identity", choices=[], allow_custom_value=True)
            threshold = gr.Slider(0.3, 1.0, value=DEFAULT_THRESHOLD, step=0.01, label="Threshold", info=THRESHOLD_HELP)
            go = gr.Button("Verify", variant="primary")
        with gr.Column():
            verdict = gr.Markdown()
            side = gr.Gallery(label="Best track (left) and the identity's crops (right)", columns=6, height="auto", object_fit="contain")

    def run(path, a, b, who, t, progress=gr.Progress()):
        if not path:
            return "**Upload a video first.**", []
        try:
            s, e = _range(a, b)
            r = verify(get_store(), path, who or "", s, e, _score(t, "threshold"),
                       progress=lambda d, n: progress(d / max(n, 1), desc=f"frame {d}/{n}"))
        except ReidError as err:
            return f"**Cannot verify:** {md(err)}", []
        word = "✅ Detected: it is " + md(r.claim) if r.match else "❌ No match for " + md(r.claim)
        store, f = get_store(), get_files()
        return (f"## {word}\nscore **{r.score:.0%}** (threshold {r.threshold:.0%}), track {r.track_id}",
                _thumbs(f, store, r.probe_keys, "probe") + _thumbs(f, store, r.identity_keys, r.claim))

    claim.focus(lambda: gr.update(choices=[i.name for i in get_store().identities()]), None, claim, api_name=False)
    go.click(run, [video, start, stop, claim, threshold], [verdict, side], api_name="verify")


def _opt_int(v) -> int | None:
    return None if v in (None, "") else int(v)


def _export_files(files: AppFiles, result: dict, stem: str) -> list[str]:
    out = files.export_dir()
    return [str(export(result, out / f"{stem}.csv")), str(export(result, out / f"{stem}.json"))]


def build_identify(get_store: Callable, files: AppFiles | None = None) -> None:
    get_files = _files(get_store, files)
    decisions = gr.State([])
    with gr.Row():
        with gr.Column():
            video, start, stop = _video_inputs()
            threshold = gr.Slider(0.3, 1.0, value=DEFAULT_THRESHOLD, step=0.01, label="Threshold", info=THRESHOLD_HELP)
            only = gr.Dropdown(label="Only this identity (empty = all; 'unknown' = the unnamed)", choices=[],
                               value="", allow_custom_value=True)
            go = gr.Button("Identify", variant="primary")
            with gr.Accordion("Refine the results (no recomputation)", open=False):
                with gr.Row():
                    show_from = optional_frame("Show frames from")
                    show_to = optional_frame("Show frames to")
                min_crops = gr.Slider(0, 50, value=0, step=1, label="Hide tracks shorter than (crops)")
        with gr.Column():
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Tracks", columns=5, height="auto", object_fit="contain")
            table = gr.Dataframe(headers=["track", "identity", "best match", "similarity %", "frames", "crops"],
                                 interactive=False)
            files = gr.File(label="Export of the list shown (CSV and JSON)")

    def render(ds, t, who, f0, f1, n):
        if not ds:
            return "Run Identify first.", [], [], None
        try:
            t = _score(t, "threshold")
            f0, f1 = checks.frame_range(f0, f1)
            n = checks.count(n or 0, "shortest track", minimum=0)
        except InputError as err:
            return f"**Cannot show the results:** {md(err)}", [], [], None
        shown = refine(ds, t, (who or "").strip() or None, f0, f1, n)
        store, files_ = get_store(), get_files()
        rows, thumbs = [], []
        for d in shown:
            name = d.match.identity or UNKNOWN
            rows.append([d.label, name, d.match.best_match or "", round(d.match.score * 100, 1),
                         f"{d.frames[0]}..{d.frames[-1]}", len(d.frames)])
            mid = d.keys[len(d.keys) // 2]
            thumbs.append((files_.crop_file(mid, store.get_crops([mid])[0].jpeg),
                           f"{'✅ ' + name if d.match.identity else '❔ unknown'} · {d.match.score:.0%} · "
                           f"track {d.label} · frames {d.frames[0]}..{d.frames[-1]}"))
        named = sum(1 for d in shown if d.match.identity)
        people = sorted({d.match.identity for d in shown if d.match.identity})
        text = (f"**{named} of {len(shown)} tracks named** at threshold {float(t):.0%}"
                + (f" ({', '.join(md(p) for p in people)})" if people else "") + "; the rest are unknown."
                + (f" Showing {len(shown)} of {len(ds)} tracks." if len(shown) != len(ds) else ""))
        return text, thumbs, rows, _export_files(files_, decisions_json(shown, t), "identify")

    def run(path, a, b, t, who, f0=None, f1=None, n=0, progress=gr.Progress()):
        if not path:
            return [], "**Upload a video first.**", [], [], None
        try:
            s, e = _range(a, b)
            ds = identify(get_store(), path, s, e, _score(t, "threshold"),
                          progress=lambda d, n: progress(d / max(n, 1), desc=f"frame {d}/{n}"))
        except ReidError as err:
            return [], f"**Cannot identify:** {md(err)}", [], [], None
        if not ds:
            return [], "Nobody was detected in this range.", [], [], None
        return [ds, *render(ds, t, who, f0, f1, n)]

    outputs = [summary, gallery, table, files]
    go.click(run, [video, start, stop, threshold, only, show_from, show_to, min_crops], [decisions, *outputs],
             api_name="identify")
    refine_inputs = [decisions, threshold, only, show_from, show_to, min_crops]
    threshold.release(render, refine_inputs, outputs, api_name="identify_refine")
    for control in (only, show_from, show_to):
        control.change(render, refine_inputs, outputs, api_name=False)
    min_crops.release(render, refine_inputs, outputs, api_name=False)
    only.focus(lambda: gr.update(choices=["", UNKNOWN] + [i.name for i in get_store().identities()]), None, only,
               api_name=False)


def build_search_image(get_store: Callable, files: AppFiles | None = None) -> None:
    get_files = _files(get_store, files)
    gr.Markdown("### Find people by an image")
    with gr.Row():
        with gr.Column():
            image = gr.File(label="Person crop (JPEG or PNG)", file_types=["image"], type="filepath")
            top_k = gr.Slider(1, 50, value=10, step=1, label="Results")
            go = gr.Button("Search by image", variant="primary")
        with gr.Column():
            min_score = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Minimum similarity",
                                  info=f"Same cosine scale as identify (default identity threshold "
                                       f"{DEFAULT_THRESHOLD:.2f})")
            camera = gr.Dropdown(label="Camera / source (empty = all)", choices=[], value="",
                                 allow_custom_value=True)
            with gr.Row():
                f0 = optional_frame("From frame")
                f1 = optional_frame("To frame")
    note = gr.Markdown()
    results = gr.Gallery(label="Most similar tracks", columns=5, height="auto", object_fit="contain")
    table = gr.Dataframe(headers=["rank", "similarity %", "camera", "video", "frame", "track"], interactive=False)
    files = gr.File(label="Export (CSV and JSON)")

    def run(path, k, floor=0.0, cam="", a=None, b=None):
        if not path:
            return [], "**Upload an image first.**", [], None
        try:
            k = checks.count(k, "results")
            floor = _score(floor or 0, "minimum similarity")
            a, b = checks.frame_range(a, b)
            data = checks.image_file(path)  # size caps before anything decodes it
            store = get_store()
            hits = search_image(store, data, None)
        except ReidError as err:
            return [], f"**Cannot search:** {md(err)}", [], None
        total = len(hits)
        hits = filter_hits(hits, floor or None, cam or None, None, a, b)[:k]
        result = hits_json(hits, store)
        crops = {c.key: c for c in store.get_crops([h.key for h in hits])}
        files_ = get_files()
        items = [(files_.crop_file(h.key, crops[h.key].jpeg),
                  f"{h.score:.0%} · {h.camera} · frame {h.frame} · track {h.track_id}") for h in hits]
        rows = [[i, round(r["score"] * 100, 1), r["camera"], Path(r["video"] or r["video_id"]).name, r["frame"],
                 r["track_id"]] for i, r in enumerate(result["results"], 1)]
        if not total:
            return [], "The store holds no crops yet: ingest or enroll some footage first.", [], None
        msg = f"{len(hits)} tracks shown (of {total} in the store)" if hits else "No track passes the filters."
        return items, msg, rows, _export_files(files_, result, "search_image") if hits else None

    go.click(run, [image, top_k, min_score, camera, f0, f1], [results, note, table, files], api_name="search_image")
    camera.focus(lambda: gr.update(choices=[""] + sorted({v.camera for v in get_store().videos()})), None, camera,
                 api_name=False)


def build_gallery(get_store: Callable, files: AppFiles | None = None) -> None:
    get_files = _files(get_store, files)
    with gr.Row():
        refresh = gr.Button("Refresh")
        name = gr.Textbox(label="Identity")
        new_name = gr.Textbox(label="New name / merge target")
    with gr.Row():
        rename_btn = gr.Button("Rename")
        merge_btn = gr.Button("Merge identity into target")
        delete_btn = gr.Button("Delete identity and its crops", variant="stop")
    with gr.Row():
        segments_btn = gr.Button("Show the identity's segments")
        wrong = gr.Textbox(label="Segments or crop keys to take out (e.g. 12, 14.2)")
        remove_btn = gr.Button("Remove from identity")
    segment_table = gr.Dataframe(headers=["segment", "camera", "first frame", "last frame", "crops"],
                                 interactive=False)
    segment_strip = gr.Gallery(label="First crop of each segment", columns=8, height="auto", object_fit="contain")
    message = gr.Markdown()
    thumbs = gr.Gallery(label="Identities", columns=6, height="auto", object_fit="contain")
    table = gr.Dataframe(headers=["identity", "crops", "tracks"], interactive=False)
    cameras = gr.Dataframe(headers=["camera", "videos", "video ids"], interactive=False)

    def listing(msg=""):
        store = get_store()
        rows, pics = [], []
        for i in store.identities():
            crops = store.get_crops(i.keys[:1]) if i.keys else []
            n_tracks = len({c.track_id for c in store.get_crops(i.keys, jpeg=False)}) if i.keys else 0
            rows.append([i.name, len(i.keys), n_tracks])
            if crops:
                pics.append((get_files().crop_file(crops[0].key, crops[0].jpeg), f"{i.name} · {len(i.keys)} crops"))
        groups: dict[str, list[str]] = {}
        for v in store.videos():
            groups.setdefault(v.camera, []).append(v.video_id[:12])
        cams = [[c, len(v), ", ".join(v)] for c, v in groups.items()]
        return msg or f"{len(rows)} identities", pics, rows, cams

    def act(fn, *args):
        try:
            return listing(fn(*args))
        except ReidError as err:
            return listing(f"**Error:** {md(err)}")

    def rename(a, b):
        ident = get_store().rename_identity(a, b)
        get_files().forget([a], [])  # exports under the old name; the thumbnails are keyed by crop, still valid
        return f"Renamed {md(a)} to {md(ident.name)}."

    def merge(a, b):
        ident = get_store().merge_identities([a], b)
        get_files().forget([a], [])
        return f"Merged {md(a)} into {md(ident.name)}."

    def delete(a):
        store = get_store()
        ident = store.identity(a)
        keys = ident.keys if ident else []
        n = store.delete_identity(a)
        get_files().forget([ident.name if ident else a], keys)  # its thumbnails and exports go with it
        return f"Deleted {md(a)} and {n} crops."

    def segments(a):
        store = get_store()
        try:
            ident = store.identity(a) if a else None
        except ReidError as err:
            return f"**Error:** {md(err)}", [], []
        if ident is None:
            return f"**Error:** no identity named {md(a or '')}", [], []
        rows, pics = [], []
        for t, _ in identity_segments(store, ident):
            rows.append([t.label, t.camera, t.frames[0], t.frames[-1], len(t.keys)])
            crop = store.get_crops(t.keys[:1])[0]
            pics.append((get_files().crop_file(crop.key, crop.jpeg), f"segment {t.label}"))
        return f"{md(ident.name)}: {len(rows)} segment(s)", rows, pics

    def remove(a, items):
        try:
            left, n = remove_from_identity(get_store(), a, items.replace(",", " ").split())
        except ReidError as err:
            return f"**Error:** {md(err)}", [], []
        text, rows, pics = segments(left.name)
        return f"Removed {n} crop(s) from {md(left.name)}. " + text, rows, pics

    segments_btn.click(segments, [name], [message, segment_table, segment_strip], api_name="gallery_segments")
    remove_btn.click(remove, [name, wrong], [message, segment_table, segment_strip], api_name="gallery_remove")
    outputs = [message, thumbs, table, cameras]
    refresh.click(listing, None, outputs, api_name="gallery_list")
    rename_btn.click(lambda a, b: act(rename, a, b), [name, new_name], outputs, api_name="gallery_rename")
    merge_btn.click(lambda a, b: act(merge, a, b), [name, new_name], outputs, api_name="gallery_merge")
    delete_btn.click(lambda a: act(delete, a), [name], outputs, api_name="gallery_delete")
