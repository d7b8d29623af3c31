"""The HTML report as a person sees it at a phone's, a laptop's and a desktop's width (issue 12, item 7)."""

import json

import pytest

from fashion_cnn.cli import main

# Every element of the page that sticks out past the window, or hides part of itself behind a scrollbar, and
# every headline card whose value wraps onto a second line.
PROBLEMS = """() => {
  const found = [];
  const width = document.documentElement.clientWidth;
  for (const el of document.querySelectorAll('main *')) {
    const style = getComputedStyle(el);
    if (el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'visible') found.push('scrolls: ' + el.tagName + ' ' + el.textContent.slice(0, 40));
    if (el.getBoundingClientRect().right > width + 1) found.push('sticks out: ' + el.tagName + ' ' + el.textContent.slice(0, 40));
  }
  for (const value of document.querySelectorAll('.card .value')) {
    const line = parseFloat(getComputedStyle(value).lineHeight);
    if (value.getBoundingClientRect().height > 1.5 * line) found.push('card wraps: ' + value.textContent);
  }
  return found;
}"""


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A finished toy run whose training took half an hour, as the tutorial's does on a laptop."""
    from conftest import write_dataset

    root = tmp_path_factory.mktemp("layout")
    toy = write_dataset(root / "toy")
    assert main(["train", "--data-dir", str(toy), "--epochs", "2", "--runs-dir", str(root), "--name", "r", "--quiet"]) == 0
    run = root / "r"
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(train_seconds=1772.4, seconds_per_epoch=161.1)
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert main(["report", str(run), "--data-dir", str(toy)]) == 0
    return run


@pytest.mark.parametrize("width", [420, 1280, 1920])
def test_the_report_fits_the_window_and_its_cards_one_line(long_run, chromium_browser, width):
    page = chromium_browser.new_page(viewport={"width": width, "height": 1000})
    try:
        page.goto((long_run / "report.html").as_uri())
        assert "29 min 32 s" in page.inner_text(".cards")
        assert page.evaluate(PROBLEMS) == []
    finally:
        page.close()
