"""What a person sees on the service's pages, in a real browser: the probability bars as drawn, the Korean class
names in a font that has them, and the API docs with no network. A real uvicorn on 127.0.0.1, Debian's
Chromium driven by Playwright (as in test_web.py, which checks what the page says rather than what it draws)."""

import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import draw_a_stroke

pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")
import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SNEAKER = Path(__file__).parent / "data" / "sneaker-on-table.jpg"
TOLERANCE_PX = 2  # a bar's drawn width may differ from probability × track by rounding, never by more


@pytest.fixture
def offline_context(chromium_browser, server_url):
    """A browser context that can reach this server only: any other request is aborted and recorded."""
    context = chromium_browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(90_000)  # generous: a busy 2-core CI machine starts Chromium and torch slowly
    context.blocked = []

    def only_local(route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            context.blocked.append(route.request.url)
            route.abort()

    context.route(re.compile(r"^https?://"), only_local)
    yield context
    context.close()


@pytest.fixture
def page(offline_context, server_url):
    page = offline_context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.goto(server_url + "/")
    # A function, not an expression: the page's Content-Security-Policy forbids eval, which Playwright's polling
    # of an expression uses (then it fails, whenever the first check is not already true).
    page.wait_for_function("() => document.querySelectorAll('#bars li').length === 10")
    yield page
    assert offline_context.blocked == []


# The bars as laid out: each fill's and track's box, the percentage shown beside it, and whether it is the top one.
BARS = """() => [...document.querySelectorAll('#bars li')].map((li) => {
  const fill = li.querySelector('.fill').getBoundingClientRect(), track = li.querySelector('.track').getBoundingClientRect();
  return { fill: { x: fill.x, y: fill.y, width: fill.width, height: fill.height },
           track: { x: track.x, y: track.y, width: track.width, height: track.height },
           pct: li.querySelector('.pct').textContent, top: li.classList.contains('top'),
           colour: getComputedStyle(li.querySelector('.fill')).backgroundColor };
})"""

# True once every bar's width matches the percentage it shows and nothing has moved for 400 ms: the bars'
# animation is over and no later prediction (a drawing sends several) is still arriving.
SETTLED = """(tolerance) => {
  const bars = [...document.querySelectorAll('#bars li')].map((li) => [li.querySelector('.fill').getBoundingClientRect().width,
    li.querySelector('.track').getBoundingClientRect().width, parseFloat(li.querySelector('.pct').textContent)]);
  const agree = bars.length > 0 && bars.every(([fill, track, pct]) => !isNaN(pct) && Math.abs(fill - track * pct / 100) <= tolerance);
  const now = JSON.stringify(bars), t = performance.now();
  if (!agree || window.__bars !== now) { window.__bars = now; window.__barsSince = t; return false; }
  return t - window.__barsSince >= 400;
}"""


def wait_for_bars(page) -> list[dict]:
    """The bars once the prediction is shown and they have settled (at most 15 s more: then as they are)."""
    from playwright.sync_api import TimeoutError

    page.wait_for_selector("#prediction-label[data-state=done]")
    try:
        page.wait_for_function(SETTLED, arg=TOLERANCE_PX, polling=100, timeout=15_000)
    except TimeoutError:
        pass  # bars that never match their percentages: the assertions below say how
    return page.evaluate(BARS)


def rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def assert_drawn(page, bar: dict, probability: float):
    """The bar's fill is as wide as its share of the track, and the screen shows its colour there (not the track's)."""
    track, fill = bar["track"], bar["fill"]
    assert abs(fill["width"] - probability * track["width"]) <= TOLERANCE_PX, (bar, probability)
    expected = probability * track["width"]
    assert expected >= 8, "the test needs a bar wide enough to see"
    shot = Image.open(io.BytesIO(page.screenshot(clip=track))).convert("RGB")
    mid_y = shot.height // 2
    inside = [shot.getpixel((x, mid_y)) for x in range(3, int(expected) - 3)]
    outside = [shot.getpixel((x, mid_y)) for x in range(int(expected) + 3, shot.width - 3)]
    colour = rgb(bar["colour"])
    close = lambda px: max(abs(a - b) for a, b in zip(px, colour)) <= 12  # noqa: E731
    assert inside and all(close(px) for px in inside), f"the bar's fill ({colour}) is not drawn: {inside[:5]}"
    assert outside and not any(close(px) for px in outside), "the fill spills past its width"


def test_an_uploaded_photo_draws_each_bar_as_wide_as_its_probability(page, server_url):
    page.set_input_files("#file-input", str(SNEAKER))
    bars = wait_for_bars(page)
    expected = httpx.post(server_url + "/predict", content=SNEAKER.read_bytes()).json()
    for bar, p in zip(bars, expected["probabilities"]):
        assert abs(bar["fill"]["width"] - p["probability"] * bar["track"]["width"]) <= TOLERANCE_PX, (bar, p)
    top = bars[expected["index"]]
    assert top["top"] and top["pct"] == f"{100 * expected['probability']:.1f}%"
    assert_drawn(page, top, expected["probability"])
    assert page.problems == []


def test_a_drawing_draws_the_bars_too(page):
    draw_a_stroke(page)
    bars = wait_for_bars(page)
    (top,) = [bar for bar in bars if bar["top"]]
    probability = float(top["pct"].rstrip("%")) / 100
    assert probability == max(float(bar["pct"].rstrip("%")) / 100 for bar in bars)
    assert_drawn(page, top, probability)
    assert page.problems == []


# Which fonts Chromium drew an element's text with (DevTools' "Rendered Fonts"), and how many glyphs each.
def rendered_fonts(page, selector: str) -> list[dict]:
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()


def test_korean_class_names_are_drawn_with_a_font_that_has_hangul(page, server_url):
    page.set_input_files("#file-input", str(SNEAKER))
    page.wait_for_selector("#prediction-label[data-state=done]")
    assert page.evaluate("() => document.fonts.ready.then(() => document.fonts.status)") == "loaded"
    korean = page.text_content("#prediction-label-ko")
    assert re.search("[가-힣]", korean)
    # The page's stylesheet brings its own Hangul font, and the browser loaded it (this machine has none).
    loaded = page.evaluate("() => [...document.fonts].filter((f) => f.status === 'loaded').map((f) => f.family)")
    assert loaded, "no web font was loaded"
    # Every Hangul glyph of the big Korean label and of a bar's Korean name came from that web font.
    for selector in ("#prediction-label-ko", "#bars li:nth-child(2) .name small"):
        hangul = len(re.findall("[가-힣]", page.text_content(selector)))
        custom = sum(f["glyphCount"] for f in rendered_fonts(page, selector) if f["isCustomFont"])
        assert custom == hangul, (selector, rendered_fonts(page, selector))
    # And they look like letters: two different names of two syllables each look different (empty boxes, "tofu",
    # would look the same), set in the page's own font at the same whole-pixel position.
    crops = []
    for text in ("바지", "가방"):
        page.evaluate(
            """(text) => { document.getElementById('glyph-probe')?.remove();
                const s = Object.assign(document.createElement('span'), { id: 'glyph-probe', textContent: text });
                s.style.cssText = 'position:fixed;left:10px;top:10px;font-size:32px;line-height:40px;background:#fff;color:#000;z-index:9';
                document.body.append(s); }""",
            text,
        )
        crops.append(Image.open(io.BytesIO(page.screenshot(clip={"x": 10, "y": 10, "width": 64, "height": 40}))).convert("L"))
    a, b = (c.tobytes() for c in crops)
    differing = sum(abs(p - q) > 64 for p, q in zip(a, b))
    assert differing > 100, f"the two Korean names look alike ({differing} pixels differ): empty boxes, not glyphs"
    assert page.problems == []


def test_the_api_docs_work_with_no_network(offline_context, server_url):
    page = offline_context.new_page()
    page.goto(server_url + "/docs")  # Swagger UI
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = {re.sub(r"\s+", "", p) for p in page.locator(".opblock-summary-path").all_text_contents()}
    assert {"/predict", "/predict/batch", "/model", "/health"} <= paths
    page.goto(server_url + "/redoc")  # ReDoc
    page.wait_for_selector("text=Classify several pictures", timeout=30_000)
    assert offline_context.blocked == []


def test_an_uploaded_photo_shows_its_gradcam_heatmap_and_feature_map_grid(page, server_url):
    page.set_input_files("#file-input", str(SNEAKER))
    wait_for_bars(page)
    page.wait_for_selector("#gradcam:not([hidden])")
    shown = page.evaluate(
        """() => ['gradcam', 'feature-maps'].map((id) => { const img = document.getElementById(id), box = img.getBoundingClientRect();
             return { natural: [img.naturalWidth, img.naturalHeight], width: box.width, height: box.height, x: box.x, y: box.y }; })"""
    )
    cam, maps = shown
    assert cam["natural"] == [112, 112] and cam["width"] >= 150, cam  # the 28×28 input, 4× with the heatmap over it
    assert maps["natural"] == [8 * 28 + 7 * 2, 4 * 28 + 3 * 2] and maps["width"] >= 200, maps  # conv2d's 32 maps, 8 a row
    # What the screen shows: the heatmap's colours (jet: red where the evidence is, blue where there is none)...
    clip = {k: cam[k] for k in ("x", "y", "width", "height")}
    pixels = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")).reshape(-1, 3).astype(int).tolist()
    assert any(r > 150 and b < 110 for r, g, b in pixels), "no warm (evidence) colour drawn"
    assert any(b > 110 and r < 80 for r, g, b in pixels), "no cold (no evidence) colour drawn"
    # ...and a grid of different maps: each 28×28 tile differs from its neighbour somewhere.
    clip = {k: maps[k] for k in ("x", "y", "width", "height")}
    grid = Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("L")
    tile = grid.width / 8
    tiles = [grid.crop((int(c * tile) + 2, 2, int((c + 1) * tile) - 2, int(tile) - 2)).tobytes() for c in range(8)]
    assert len(set(tiles)) == 8, "the first row's feature maps are drawn alike"
    expected = httpx.post(server_url + "/predict?include=gradcam", content=SNEAKER.read_bytes()).json()
    assert page.inner_text("#cam-caption").startswith(f"Why {expected['label']}")
    assert page.problems == []
