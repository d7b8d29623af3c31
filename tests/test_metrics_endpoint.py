"""The service's ``/metrics`` after real requests, read back with prometheus_client's own parsers (the text
format and OpenMetrics): every request counted once by method, route template and status, the refused ones
too; each prediction by the class the answer named; answers with ``in_distribution: false``; the document."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import wait_until_serving

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
pytest.importorskip("prometheus_client", reason="the serve extra is not installed: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from fashion_cnn.data.registry import FASHION_MNIST  # noqa: E402
from fashion_cnn.serving.app import create_app  # noqa: E402
from fashion_cnn.serving.limits import Limits  # noqa: E402
from test_openapi import published_schema  # noqa: E402

SNEAKER = Path(__file__).parent / "data" / "sneaker-on-table.jpg"
LIMITS = Limits(max_upload_bytes=200_000, max_batch=3)
ROUTES = ("/predict", "/predict/batch")


@pytest.fixture
def client(untrained_model_file):
    """A new app for each test: its counts start at zero."""
    with TestClient(create_app(str(untrained_model_file), limits=LIMITS)) as c:
        yield c


def png(seed: int, side: int = 40) -> bytes:
    """A different picture for each seed: the untrained model need not name one class for all of them."""
    a = np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def scrape(text: str) -> dict[str, dict[tuple, float]]:
    """Every sample of a /metrics text, by sample name, then by its labels (as sorted (name, value) pairs)."""
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def requests_by(samples, *keys: str) -> Counter:
    """``fashion_cnn_http_requests_total`` summed by the labels ``keys``, without the zeros."""
    out = Counter()
    for labels, value in samples.get("fashion_cnn_http_requests_total", {}).items():
        out[tuple(dict(labels)[k] for k in keys)] += value
    return +out


def predictions(samples) -> dict[tuple[str, str], float]:
    return {(dict(k)["route"], dict(k)["class"]): v for k, v in samples["fashion_cnn_predictions_total"].items()}


def send_a_mix(client) -> tuple[Counter, Counter]:
    """Successes and every kind of refusal; returns what was asked (method, route, status) and the classes the
    answers named (route, class), as the client saw them."""
    asked, named = Counter(), Counter()

    def tally(r, method: str, route: str):
        asked[method, route, str(r.status_code)] += 1
        if r.status_code == 200 and route == "/predict":
            named[route, r.json()["label"]] += 1
        if r.status_code == 200 and route == "/predict/batch":
            named.update((route, x["label"]) for x in r.json()["results"] if "label" in x)
        return r

    for seed in range(4):
        tally(client.post("/predict", content=png(seed)), "POST", "/predict")
    tally(client.post("/predict", files={"file": ("sneaker.jpg", SNEAKER.read_bytes(), "image/jpeg")}), "POST", "/predict")
    batch = [("files", (f"{i}.png", png(10 + i), "image/png")) for i in range(2)] + [("files", ("notes.png", b"text", "image/png"))]
    r = tally(client.post("/predict/batch", files=batch), "POST", "/predict/batch")
    assert [x.get("status") for x in r.json()["results"]] == [None, None, 415]  # one bad picture: not a prediction
    refusals = [
        (lambda: client.post("/predict", content=b""), "POST", "/predict", 400),  # empty
        (lambda: client.post("/predict", files={"file": ("a.png", b"just text", "image/png")}), "POST", "/predict", 415),
        (lambda: client.post("/predict", content=b"\0" * 200_001), "POST", "/predict", 413),  # by BodyLimit, before any route
        (lambda: client.post("/predict?include_input=maybe", content=png(0)), "POST", "/predict", 422),
        (lambda: client.post("/predict/batch", content=png(0)), "POST", "/predict/batch", 400),  # not multipart
        (lambda: client.get("/predict"), "GET", "/predict", 405),  # the route's template, though not its method
        (lambda: client.get("/health", headers={"host": "evil.example"}), "GET", "/health", 400),  # by HeaderGuard
        (lambda: client.get("/wp-admin/setup.php?x=1"), "GET", "unmatched", 404),  # never the raw path
        (lambda: client.get("/fonts/nothing-here.woff"), "GET", "/fonts/{name}", 404),
        (lambda: client.request("BREW", "/health"), "other", "/health", 405),  # any token is a method to h11
    ]
    for send, method, route, status in refusals:
        assert tally(send(), method, route).status_code == status
    for _ in range(2):
        tally(client.get("/health"), "GET", "/health")
    return asked, named


def test_every_request_is_counted_once_by_route_method_and_status(client):
    asked, named = send_a_mix(client)
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = scrape(r.text)
    assert requests_by(samples, "method", "route", "status") == asked  # the scrape itself is not in its own answer

    # The latency histogram: one observation per request, by method and route; cumulative buckets up to +Inf.
    by_route = Counter()
    for (method, route, _), n in asked.items():
        by_route[method, route] += n
    counts = {(dict(k)["method"], dict(k)["route"]): v for k, v in samples["fashion_cnn_http_request_duration_seconds_count"].items()}
    assert counts == by_route
    buckets = samples["fashion_cnn_http_request_duration_seconds_bucket"]
    for method, route in by_route:
        row = sorted((float(dict(k)["le"]), v) for k, v in buckets.items() if dict(k)["method"] == method and dict(k)["route"] == route)
        assert [v for _, v in row] == sorted(v for _, v in row) and row[-1] == (float("inf"), by_route[method, route])
        assert 0 < samples["fashion_cnn_http_request_duration_seconds_sum"][(("method", method), ("route", route))] < 60

    # Predictions by the class each answer named; every class of the model on both routes, the unnamed ones at 0.
    assert predictions(samples) == {(route, name): named[route, name] for route in ROUTES for name in FASHION_MNIST.classes}
    assert sum(named.values()) == 5 + 2
    # No answer carries in_distribution yet: nothing is counted out of distribution, but the series are there.
    assert samples["fashion_cnn_out_of_distribution_total"] == {(("route", route),): 0 for route in ROUTES}

    # The scrape is counted in the next one, and only there.
    again = scrape(client.get("/metrics").text)
    assert requests_by(again, "method", "route", "status") == asked + Counter({("GET", "/metrics", "200"): 1})


def test_answers_out_of_distribution_are_counted_where_the_field_is_false(client, monkeypatch):
    """``in_distribution`` comes from another part of the service: here a wrapper adds it to the real answers
    (false for the pictures in ``strange``, true for the others; absent is tested above)."""
    clf = client.app.state.classifier
    strange = {png(1), png(3)}
    classify, classify_many = clf.classify, clf.classify_many

    def marked(data, *args, **kwargs):
        return {**classify(data, *args, **kwargs), "in_distribution": data not in strange}

    def marked_many(items, *args, **kwargs):
        results = classify_many(items, *args, **kwargs)
        return [{**r, "in_distribution": data not in strange} if "label" in r else r for (_, data), r in zip(items, results)]

    monkeypatch.setattr(clf, "classify", marked)
    monkeypatch.setattr(clf, "classify_many", marked_many)
    answers = [client.post("/predict", content=png(seed)).json() for seed in range(5)]  # 1 and 3: strange
    batch = [("files", (f"{seed}.png", png(seed), "image/png")) for seed in (3, 7)] + [("files", ("bad.png", b"no", "image/png"))]
    results = client.post("/predict/batch", files=batch).json()["results"]
    assert [a["in_distribution"] for a in answers] == [True, False, True, False, True]
    assert [x.get("in_distribution") for x in results] == [False, True, None]

    samples = scrape(client.get("/metrics").text)
    assert samples["fashion_cnn_out_of_distribution_total"] == {(("route", "/predict"),): 2, (("route", "/predict/batch"),): 1}
    # An answer out of distribution is still a prediction of its class.
    assert sum(v for (route, _), v in predictions(samples).items() if route == "/predict") == 5
    assert sum(v for (route, _), v in predictions(samples).items() if route == "/predict/batch") == 2


def test_metrics_is_in_the_openapi_document_as_text(client):
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/metrics"]["get"]["responses"]
    assert set(responses) >= {"200", "400", "500"}
    assert set(responses["200"]["content"]) == {"text/plain", "application/openmetrics-text"}
    for accept in (None, "application/openmetrics-text; version=1.0.0"):
        r = client.get("/metrics", headers={"accept": accept} if accept else {})
        assert published_schema(spec, r) == {"type": "string"}  # the answer's status and content type are documented


def test_prometheus_gets_openmetrics_when_it_asks(client):
    client.post("/predict", content=png(0))
    # What Prometheus 3 sends when it scrapes.
    accept = "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    r = client.get("/metrics", headers={"accept": accept})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in parse_openmetrics(r.text)}  # the strict parser: it refuses a text without "# EOF"
    requests = {
        (s.labels["route"], s.labels["status"]): s.value for s in families["fashion_cnn_http_requests"].samples if s.name.endswith("_total")
    }
    assert requests == {("/predict", "200"): 1}
    assert sum(s.value for s in families["fashion_cnn_predictions"].samples if s.name.endswith("_total")) == 1


@pytest.mark.parametrize(
    "accept", ["text/plain; version=abc", "text/plain; version=1.x", "application/openmetrics-text; version=x.y", "nonsense;;;,,"]
)
def test_an_unreadable_accept_header_still_gets_the_metrics(client, accept):
    """prometheus_client 0.26 raises TypeError comparing `abc` with numbers (a 500 without the fallback to the
    text format); older ones ignore the version and answer OpenMetrics for the third header. Either way: a 200
    that its parser reads."""
    r = client.get("/metrics", headers={"accept": accept})
    assert r.status_code == 200, r.text
    media = r.headers["content-type"].split(";")[0]
    if accept.startswith("application/openmetrics-text") and media == "application/openmetrics-text":
        assert "fashion_cnn_predictions" in {f.name for f in parse_openmetrics(r.text)}
    else:
        assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "fashion_cnn_predictions_total" in scrape(r.text)


def test_a_foreign_host_cannot_read_the_metrics(client):
    r = client.get("/metrics", headers={"host": "rebinding.example"})
    assert r.status_code == 400 and "fashion_cnn" not in r.text


@pytest.mark.slow
def test_a_real_server_with_two_workers_counts_requests_from_many_clients(untrained_model_file):
    """``fashion-cnn serve --workers 2``: one process whose two workers are threads, counting into one registry;
    8 clients at once, each with its own picture, then one scrape over HTTP."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "fashion_cnn", "serve", str(untrained_model_file), "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    named, statuses, lock = Counter(), Counter(), threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for _ in range(5):
                label = c.post("/predict", content=png(k)).json()["label"]
                refused = c.post("/predict", content=b"just some text")  # 415
                with lock:
                    named[label] += 1
                    statuses["200"] += 1
                    statuses[str(refused.status_code)] += 1

    try:
        wait_until_serving(proc, port)  # one /health answered 200 (the tries before it found no server)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        samples = scrape(httpx.get(f"{url}/metrics").text)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert statuses == {"200": 40, "415": 40}
    assert requests_by(samples, "method", "route", "status") == {
        ("POST", "/predict", "200"): 40,
        ("POST", "/predict", "415"): 40,
        ("GET", "/health", "200"): 1,
    }
    assert {name: v for (route, name), v in predictions(samples).items() if route == "/predict" and v} == dict(named)
