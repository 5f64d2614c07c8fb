"""Real user flows in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), with the defaults a
person leaves as they are: no frame range typed, so every tab works on the whole (short) clip. Screenshots are kept
in test-artifacts/."""
import re
import shutil

import cv2
import numpy as np
import pytest

import app
from tests.integration.conftest import ARTIFACTS, served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LONG = 180_000  # ms: an ingest of the 120-frame clip on 2 cores, with margin


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 1100})
        browser.close()


@pytest.fixture(scope="session")
def short_clip():
    """The app's own example clip (the first 120 frames of PETS09-S2L1 as MP4), as a visitor would use it."""
    from ui.startup import example_clip

    clip = example_clip()
    assert clip is not None and cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT) == 120
    return clip


def _shot(page, name):
    page.wait_for_timeout(800)  # images in galleries load after the text that announces them
    page.screenshot(path=str(ARTIFACTS / f"browser_{name}.png"), full_page=True)


def _tab(page, name):
    page.get_by_role("tab", name=name).click()
    return page.get_by_role("tabpanel")


def _drawn(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that differ clearly between two frames (boxes and labels drawn on one of them)."""
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 40).mean())


def test_journey_with_defaults(browser_page, short_clip, tmp_path):
    """Ingest (double-clicked), Enroll by a click, Identify, click a result to see its frame, export an annotated
    clip, the identity's timeline, search by image: never typing a frame range."""
    from playwright.sync_api import expect

    from reid_core.store import Store

    page = browser_page
    store_path = tmp_path / "store"
    demo = app.build_app(store_path)
    with served(demo) as url:
        page.goto(url)
        # Ingest, double-clicked: one job, one run, no duplicate tracks
        panel = _tab(page, "Ingest")
        panel.locator("input[type=file]").first.set_input_files(str(short_clip))
        expect(panel.get_by_text("120 frames")).to_be_visible(timeout=60_000)
        panel.get_by_role("button", name="Ingest", exact=True).dblclick()
        expect(panel.get_by_text("people tracks")).to_be_visible(timeout=LONG)
        expect(panel.get_by_role("button", name="Ingest", exact=True)).to_be_enabled()
        _shot(page, "ingest")
        store = Store(store_path)
        assert len(store.runs()) == 1 and store.runs()[0].to_frame == 119  # empty To-frame = the end
        tracks = store.tracks()
        assert len({k for t in tracks for k in t.keys}) == sum(len(t.keys) for t in tracks)

        # Enroll: click the person on the preview (the longest track, where it starts)
        t = max(tracks, key=len)
        a, box = t.frames[0], t.box_at(t.frames[0])
        panel = _tab(page, "Enroll")
        panel.locator("input[type=file]").first.set_input_files(str(short_clip))
        expect(panel.get_by_text("120 frames")).to_be_visible(timeout=60_000)
        panel.get_by_label("Name (letters, digits, spaces, . _ - ')").fill("Walker")
        panel.get_by_label("Pick at frame").fill(str(a))
        panel.get_by_label("Pick at frame").press("Enter")
        expect(panel.get_by_text(f"tracked at frame {a}")).to_be_visible(timeout=30_000)
        img = panel.locator("img").first
        bb = img.bounding_box()
        scale = bb["width"] / 768
        page.mouse.click(bb["x"] + (box.x + box.w / 2) * scale, bb["y"] + (box.y + box.h / 2) * scale)
        expect(panel.get_by_label("Picked point x,y (click the preview)")).not_to_have_value("", timeout=10_000)
        panel.get_by_role("button", name="Enroll", exact=True).click()
        expect(panel.get_by_text("Enrolled Walker")).to_be_visible(timeout=LONG)
        _shot(page, "enroll")
        assert len(Store(store_path).runs()) == 1  # the enrollment reused the ingest

        # Identify with the defaults, click a result: its frame with the boxes and names
        panel = _tab(page, "Identify")
        panel.locator("input[type=file]").first.set_input_files(str(short_clip))
        panel.get_by_role("button", name="Identify", exact=True).click()
        expect(panel.get_by_text("tracks named")).to_be_visible(timeout=LONG)
        expect(panel.get_by_text("Walker").first).to_be_visible()
        panel.locator(".thumbnail-item").first.click()
        expect(page.locator("#identify-frame img")).to_be_visible(timeout=30_000)
        expect(panel.get_by_text(re.compile(r"vtest_first120 · frame \d+ · [\d.]+ s"))).to_be_visible()
        _shot(page, "identify_frame")

        # an annotated clip of the result: decodes, and has boxes where the tracks are
        panel.get_by_role("button", name="Export an annotated clip (MP4) of the list shown").click()
        expect(panel.get_by_text("Annotated clip of")).to_be_visible(timeout=LONG)
        clips = list(demo.reid_files.root.glob("exports/*/identify.mp4"))
        assert len(clips) == 1
        cap, original = cv2.VideoCapture(str(clips[0])), cv2.VideoCapture(str(short_clip))
        start = min(f for t in tracks for f in t.frames)  # the clip starts at the first frame of the list shown
        for _ in range(start + 1):
            ok, plain = original.read()
        ok, drawn = cap.read()
        assert ok and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 100
        first = [tr for tr in tracks if tr.frames[0] == start][0].box_at(start)
        x, y, w, h = (int(v) for v in first.as_list())
        edge = np.s_[max(0, y - 3):y + 3, x:x + w]  # the box's top edge
        assert _drawn(drawn[edge], plain[edge]) > 0.3
        cap.release(), original.release()

        # Gallery: the identity is listed when the tab opens, with its timeline
        panel = _tab(page, "Gallery")
        expect(panel.get_by_text("seen 1 time").or_(panel.get_by_text("seen 2 time")).first).to_be_visible(
            timeout=60_000)
        expect(page.locator("#timeline img")).to_be_visible(timeout=30_000)
        _shot(page, "gallery_timeline")
        panel.get_by_text("Rename, merge, delete").click()
        panel.get_by_role("button", name="Delete the selected identity and its crops").click()
        expect(panel.get_by_text("This cannot be undone")).to_be_visible(timeout=10_000)
        panel.get_by_role("button", name="Cancel").click()  # asked first; cancelled: nothing deleted
        expect(panel.get_by_text("This cannot be undone")).to_be_hidden(timeout=10_000)
        assert Store(store_path).identity("Walker") is not None

        # Search by an image of the enrolled person
        crop = tmp_path / "walker.jpg"
        crop.write_bytes(store.get_crops([t.keys[len(t.keys) // 2]])[0].jpeg)
        panel = _tab(page, "Search")
        page.locator("#search-image-file input[type=file]").set_input_files(str(crop))
        expect(panel.get_by_text("walker.jpg")).to_be_visible(timeout=30_000)
        panel.get_by_role("button", name="Search by image").click()
        expect(panel.get_by_text("tracks shown")).to_be_visible(timeout=LONG)
        _shot(page, "search_image")
        panel.get_by_label("Prompt (built from the tags; edit or type your own)").fill(
            "man in a dark jacket and blue jeans")
        panel.get_by_role("button", name="Search", exact=True).click()
        expect(panel.locator("text=/Engine:\\s*attributes/").first).to_be_visible(timeout=LONG)
        _shot(page, "search_text")
