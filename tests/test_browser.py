"""One real user flow in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): upload a video,
ingest a frame range, then find a person by description. A screenshot is kept in test-artifacts/."""
import shutil
import socket

import pytest

import app
from tests.conftest import ARTIFACTS, VIDEO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def served_app(tmp_path):
    demo = app.build_app(tmp_path / "store")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_upload_ingest_then_search_in_browser(served_app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    clip = tmp_path / "pets.avi"
    shutil.copy(VIDEO, clip)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(served_app)
        page.get_by_role("tab", name="Ingest").click()
        page.locator("input[type=file]").first.set_input_files(str(clip))
        expect(page.get_by_text("795 frames")).to_be_visible(timeout=60_000)
        page.get_by_label("To frame (inclusive, empty = end)").fill("40")
        page.get_by_role("button", name="Ingest").click()
        expect(page.get_by_text("Stored:")).to_be_visible(timeout=240_000)
        expect(page.get_by_text("people tracks")).to_be_visible()

        page.get_by_role("tab", name="Search").click()
        prompt = page.get_by_label("Prompt (built from the tags; edit or type your own)")
        prompt.fill("man in a dark jacket and blue jeans")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.locator("text=/Engine:\\s*attributes/").first).to_be_visible(timeout=120_000)
        page.wait_for_timeout(1500)  # let the gallery images load before the screenshot
        assert page.locator("img").count() >= 3  # preview frame + result thumbnails
        page.screenshot(path=str(ARTIFACTS / "browser_ingest_search.png"), full_page=True)
        browser.close()
