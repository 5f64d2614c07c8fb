"""Real user flows in headless Chromium (Debian's /usr/bin/chromium driven by Playwright). Screenshots are kept in
test-artifacts/."""
import shutil

import pytest

import app
from tests.conftest import ARTIFACTS, VIDEO, served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


def test_enroll_by_clicking_then_identify(browser_page, store_copy, tmp_path):
    from playwright.sync_api import expect

    page = browser_page
    t = max(store_copy.tracks(), key=len)
    a = t.frames[0]
    box = t.box_at(a)
    clip = tmp_path / "pets.avi"
    shutil.copy(VIDEO, clip)
    with served(app.build_app(store_copy.path)) as url:
        page.goto(url)
        panel = page.get_by_role("tabpanel")
        panel.locator("input[type=file]").first.set_input_files(str(clip))
        expect(panel.get_by_text("795 frames")).to_be_visible(timeout=60_000)
        panel.get_by_label("From frame (0-based)").fill(str(a))
        panel.get_by_label("To frame (inclusive, empty = end)").fill(str(a + 50))
        panel.get_by_label("Name (letters, digits, spaces, . _ - ')").fill("Walker")
        panel.get_by_label("Pick at frame").fill(str(a))
        panel.get_by_label("Pick at frame").press("Enter")
        page.wait_for_timeout(2000)  # the preview re-renders at the picked frame
        img = panel.locator("img").first
        bb = img.bounding_box()
        scale = bb["width"] / 768
        page.mouse.click(bb["x"] + (box.x + box.w / 2) * scale, bb["y"] + (box.y + box.h / 2) * scale)
        expect(panel.get_by_label("Picked point x,y (click the preview)")).not_to_have_value("", timeout=10_000)
        panel.get_by_role("button", name="Enroll").click()
        expect(panel.get_by_text("Enrolled Walker")).to_be_visible(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "browser_enroll.png"), full_page=True)

        page.get_by_role("tab", name="Identify").click()
        panel = page.get_by_role("tabpanel")
        panel.locator("input[type=file]").first.set_input_files(str(clip))
        panel.get_by_label("To frame (inclusive, empty = end)").fill("199")
        panel.get_by_role("button", name="Identify").click()
        expect(panel.get_by_text("tracks named")).to_be_visible(timeout=120_000)
        expect(panel.get_by_text("Walker").first).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "browser_identify.png"), full_page=True)
    assert store_copy.identity("Walker") is not None


def test_upload_ingest_then_search(browser_page, tmp_path):
    from playwright.sync_api import expect

    page = browser_page
    clip = tmp_path / "pets.avi"
    shutil.copy(VIDEO, clip)
    with served(app.build_app(tmp_path / "store")) as url:
        page.goto(url)
        page.get_by_role("tab", name="Ingest").click()
        panel = page.get_by_role("tabpanel")
        panel.locator("input[type=file]").first.set_input_files(str(clip))
        expect(panel.get_by_text("795 frames")).to_be_visible(timeout=60_000)
        panel.get_by_label("To frame (inclusive, empty = end)").fill("40")
        panel.get_by_role("button", name="Ingest").click()
        expect(panel.get_by_text("people tracks")).to_be_visible(timeout=240_000)

        page.get_by_role("tab", name="Search").click()
        panel = page.get_by_role("tabpanel")
        panel.get_by_label("Prompt (built from the tags; edit or type your own)").fill(
            "man in a dark jacket and blue jeans")
        panel.get_by_role("button", name="Search", exact=True).click()
        expect(panel.locator("text=/Engine:\\s*attributes/").first).to_be_visible(timeout=120_000)
        page.wait_for_timeout(1500)  # let the gallery images load before the screenshot
        assert panel.locator("img").count() >= 3
        page.screenshot(path=str(ARTIFACTS / "browser_ingest_search.png"), full_page=True)
