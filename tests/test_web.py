"""The service's page in a real browser: a real uvicorn on 127.0.0.1, Debian's Chromium driven by Playwright."""

from pathlib import Path

import pytest

from conftest import draw_a_stroke

pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")
import httpx  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from fashion_cnn.data.registry import FASHION_MNIST  # noqa: E402

SNEAKER = Path(__file__).parent / "data" / "sneaker-on-table.jpg"


@pytest.fixture
def page(chromium_browser, server_url):
    context = chromium_browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(90_000)  # generous: a busy 2-core CI machine starts Chromium and torch slowly
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    # Offline: every request the page makes goes to this server (data: URLs are the model input it shows).
    page.on("request", lambda r: r.url.startswith((server_url, "data:", "blob:")) or page.problems.append(f"outside request {r.url}"))
    page.goto(server_url + "/")
    # Not wait_for_function: polling a JavaScript string is eval, which the page's CSP (no 'unsafe-eval') refuses.
    expect(page.locator("#bars li")).to_have_count(10, timeout=90_000)
    yield page
    context.close()


def test_upload_a_photo_and_read_the_prediction(page, server_url):
    assert "parameters" in page.text_content("#model-info")
    page.set_input_files("#file-input", str(SNEAKER))
    page.wait_for_selector("#prediction-label[data-state=done]")
    expected = httpx.post(server_url + "/predict", content=SNEAKER.read_bytes()).json()
    assert page.text_content("#prediction-label") == expected["label"]
    assert page.text_content("#prediction-label-ko") == expected["label_ko"]
    assert page.get_attribute("#model-input", "src").startswith("data:image/png;base64,")
    assert page.locator("#bars li.top").count() == 1
    top_bar = page.locator("#bars li.top .name").text_content()
    assert top_bar.startswith(expected["label"])
    assert page.problems == []


def test_draw_on_the_canvas_and_get_a_prediction(page):
    draw_a_stroke(page)
    page.wait_for_selector("#prediction-label[data-state=done]")
    assert page.text_content("#prediction-label") in FASHION_MNIST.classes
    shown = page.get_attribute("#model-input", "src")
    assert shown.startswith("data:image/png;base64,") and len(shown) > 100
    assert page.text_content("#cam-caption").startswith("Why ")
    page.click("#clear")
    page.wait_for_load_state("networkidle")  # the stroke's last pictures may still be on their way
    assert page.text_content("#prediction-label") == "—"
    # "Inside the model" is back to its empty state too: no caption explaining a prediction that is gone
    assert page.is_hidden("#gradcam") and page.is_visible("#cam-empty")
    assert page.text_content("#cam-caption").startswith("Where the evidence for the answer lies")
    assert page.text_content("#maps-caption").startswith("What the first convolution layer makes of the picture")
    assert page.problems == []


def test_an_answer_that_arrives_after_clear_is_not_shown(page):
    """Clear while the stroke's prediction is on its way: the late answer (and the picture queued behind it) must
    not put a prediction back on the cleared canvas. CI saw exactly that: 'Dress' after Clear."""
    held = []

    def hold_the_first(route):  # the first picture's request waits; any later one goes through
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/predict*", hold_the_first)
    draw_a_stroke(page)
    while not held:
        page.wait_for_timeout(20)
    page.click("#clear")
    with page.expect_response("**/predict*"):
        held[0].continue_()
    page.wait_for_load_state("networkidle")  # and whatever it would have sent next
    page.wait_for_timeout(300)  # the page's handlers run after the response
    assert page.text_content("#prediction-label") == "—"
    assert page.get_attribute("#prediction-label", "data-state") == "idle"
    assert page.locator("#bars li.top").count() == 0 and page.is_hidden("#model-input")
    assert page.problems == []


def test_a_bad_file_shows_the_error(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    page.set_input_files("#file-input", str(fake))
    page.wait_for_selector("#prediction-label[data-state=error]")
    assert "notes.png" in page.text_content("#error") or "not a PNG" in page.text_content("#error")
    assert [p for p in page.problems if "415" not in p] == []  # the browser logs the 415 itself
