"""The page in a real browser with a model that has a not-clothing detector (issue 27): a photo of a cat gets the
"does not look like clothing" box drawn, with the bars still there; a garment photo does not get it."""

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fashion_cnn as fc
from conftest import REAL_DATA

pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")
from extras_guard import importorskip  # noqa: E402

SNEAKER = Path(__file__).parent / "data" / "sneaker-on-table.jpg"
AMBER = (255, 250, 235)  # style.css .ood background #fffaeb


@pytest.fixture(scope="module")
def detecting_server(real_model, tmp_path_factory):
    """``serve`` of the quick real model with its detector fitted on the real splits, in a thread."""
    import socket

    import uvicorn

    from fashion_cnn.inference.ood import fit_detector
    from fashion_cnn.serving.app import create_app

    model = fc.load_model(real_model)
    fit_detector(model, fc.load_split("train", data_dir=REAL_DATA), fc.load_split("val", data_dir=REAL_DATA))
    path = fc.save_model(tmp_path_factory.mktemp("ood-model") / "detecting.safetensors", model)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(str(path)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start within 60 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def cat_jpeg(tmp_path) -> Path:
    skimage_data = importorskip("skimage.data")
    path = tmp_path / "chelsea.jpg"
    Image.fromarray(skimage_data.chelsea()).save(path, quality=90)  # scikit-image's cat photograph
    return path


@pytest.mark.parametrize("width", [1100, 420])
def test_a_cat_photo_is_drawn_as_not_clothing_and_a_sneaker_is_not(chromium_browser, detecting_server, tmp_path, width):
    page = chromium_browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(90_000)
    page.goto(detecting_server + "/")
    page.wait_for_function("() => document.querySelectorAll('#bars li').length === 10")
    page.set_input_files("#file-input", str(cat_jpeg(tmp_path)))
    page.wait_for_selector("#prediction-label[data-state=done]")
    box = page.locator("#prediction-ood")
    box.wait_for(state="visible")
    assert box.inner_text().startswith("This does not look like clothing (score ")
    shown = box.bounding_box()
    assert shown["width"] > 100 and shown["height"] > 12
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=shown))).convert("RGB"))
    colours, counts = np.unique(shot.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[counts.argmax()]  # the colour most of the box is drawn in
    assert max(abs(int(a) - b) for a, b in zip(background, AMBER)) <= 6, background  # the box itself is drawn
    dark = (shot.sum(axis=2) < 300).mean()
    assert dark > 0.02, "the box's words are not drawn"
    # The probabilities are still shown: ten bars, the widest the top class's.
    widths = page.evaluate("() => [...document.querySelectorAll('#bars .fill')].map((f) => f.getBoundingClientRect().width)")
    assert len(widths) == 10 and max(widths) > 0
    page.screenshot(path=str(tmp_path / f"cat-{width}.png"), full_page=True)
    # A garment photo on the same page: the box goes away.
    page.set_input_files("#file-input", str(SNEAKER))
    page.wait_for_function("() => document.getElementById('prediction-ood').hidden")
    assert page.locator("#prediction-label").inner_text() == "Sneaker"
    page.close()
