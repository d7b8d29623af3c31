"""The web service under hostile input: foreign Host headers, slow and aborted uploads, oversized headers,
pictures that are cheap to send and costly to decode, bad options; each refused with one line, and the rest served."""

from __future__ import annotations

import io
import logging
import socket
import struct
import subprocess
import sys
import time
import zlib

import anyio
import numpy as np
import pytest
from PIL import Image

from conftest import wait_until_serving

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from fashion_cnn.serving.app import create_app  # noqa: E402
from fashion_cnn.serving.limits import Limits  # noqa: E402

LIMITS = Limits(max_upload_bytes=2_000_000, max_pixels=10_000_000, max_request_pixels=20_000_000, max_batch=2, body_timeout=0.5)


@pytest.fixture(scope="module")
def app(untrained_model_file):
    return create_app(str(untrained_model_file), limits=LIMITS)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


def png(side: int = 60) -> bytes:
    a = np.full((side, side), 220, np.uint8)
    a[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 30
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` RGBA pixels and holds almost none: decoding it would fail (422),
    so a 413 for it proves it was refused from its header, before any decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100))


def one_line_json(r) -> str:
    assert r.headers["content-type"].startswith("application/json"), r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail
    return detail


# --- Host header: a DNS-rebinding page must not read the API -------------------------------------------------


def test_a_foreign_host_header_is_refused(client):
    r = client.get("/model", headers={"host": "evil.example"})
    assert r.status_code == 400
    assert "evil.example" in one_line_json(r) and "--allowed-host" in r.json()["detail"]
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
        assert client.get("/model", headers={"host": host}).status_code == 200, host


def test_allowed_hosts_can_be_added(untrained_model_file):
    with TestClient(create_app(str(untrained_model_file), limits=LIMITS, allowed_hosts=["fashion.lan"])) as c:
        assert c.get("/health", headers={"host": "fashion.lan:8000"}).status_code == 200
        assert c.get("/health", headers={"host": "evil.example"}).status_code == 400


def test_model_info_names_the_file_without_its_directory(client, untrained_model_file):
    info = client.get("/model").json()
    assert info["file"] == untrained_model_file.name and "/" not in info["file"] and "\\" not in info["file"]
    assert info["limits"]["max_request_pixels"] == LIMITS.max_request_pixels


# --- batches: the same limit message at max+1 and max+2; a bad file gets its own error -----------------------


def test_batch_limit_message_is_the_same_past_the_limit(client):
    answers = [
        client.post("/predict/batch", files=[("files", (f"{i}.png", png(), "image/png")) for i in range(n)])
        for n in (LIMITS.max_batch + 1, LIMITS.max_batch + 2, LIMITS.max_batch + 5)
    ]
    assert [r.status_code for r in answers] == [413, 413, 413]
    details = {one_line_json(r) for r in answers}
    assert len(details) == 1 and f"at most {LIMITS.max_batch}" in details.pop()


def test_a_bad_file_in_a_batch_gets_its_own_error_and_the_others_are_classified(client):
    from test_openapi import check_against_document

    files = [("files", ("good.png", png(), "image/png")), ("files", ("notes.png", b"just some text", "image/png"))]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 200, r.text
    good, bad = r.json()["results"]
    assert good["file"] == "good.png" and good["label"]
    assert set(bad) == {"file", "error", "status"} and bad["file"] == "notes.png" and bad["status"] == 415
    assert "notes.png" in bad["error"] and "\n" not in bad["error"]
    check_against_document(client.get("/openapi.json").json(), r)


# --- decoding has a budget: refused from the headers, before any pixel is decoded ------------------------------


def test_a_batch_over_the_pixel_budget_is_refused_before_decoding(client):
    side = 3000  # 9 M pixels each: under the 10 M per picture; two are 18 M
    two = [("files", (f"{i}.png", png_header_only(side, side), "image/png")) for i in range(2)]
    r = client.post("/predict/batch", files=two)
    # 18 M pixels fit the 20 M budget: they are decoded, and fail as the damaged files they are
    assert r.status_code == 200 and [x.get("status") for x in r.json()["results"]] == [422, 422]

    tight = Limits(**{**LIMITS.__dict__, "max_request_pixels": 15_000_000})
    with TestClient(create_app(client.app.state.classifier, limits=tight)) as c:
        r = c.post("/predict/batch", files=two)
    assert r.status_code == 413
    detail = one_line_json(r)
    assert "18,000,000 pixels" in detail and "15,000,000" in detail


def test_one_picture_over_the_pixel_cap_is_refused_from_its_header(client):
    r = client.post("/predict", content=png_header_only(4000, 4000))
    assert r.status_code == 413 and "more than the 10,000,000 allowed" in one_line_json(r)


def costly_png(side: int) -> bytes:
    """A one-colour RGBA PNG: a few KB to send, side² pixels to decode (4000 → 16 M, ~0.4 s here)."""
    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (128, 128, 128, 255)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_batch_past_its_time_classifies_what_was_decoded_and_marks_the_rest(client):
    clf, items = client.app.state.classifier, [("big.png", costly_png(3000)), ("a.png", png()), ("b.png", png())]
    started = time.monotonic()
    results = clf.classify_many(items, deadline=started + 0.02)
    assert time.monotonic() - started > 0.02, "the big picture decoded faster than the deadline: make it bigger"
    big, *rest = results
    assert big["file"] == "big.png" and "label" in big  # decoded before the deadline: classified
    assert [(r["file"], r["status"]) for r in rest] == [("a.png", 503), ("b.png", 503)]
    assert all("send this picture again" in r["error"] and "\n" not in r["error"] for r in rest)
    assert all("label" in r for r in clf.classify_many([("a.png", png()), ("b.png", png())], deadline=time.monotonic() + 60))


def test_a_request_that_waits_too_long_for_a_worker_gets_503(untrained_model_file):
    import httpx

    # One large lane, 0.1 s per request: the second of two 16 M-pixel requests sent at once waits for the first's
    # decoding (~0.4 s) and is answered 503 with Retry-After instead of waiting on.
    limits = Limits(**{**LIMITS.__dict__, "max_pixels": 20_000_000, "max_request_pixels": 20_000_000, "request_seconds": 0.1})
    app = create_app(str(untrained_model_file), limits=limits)
    body = costly_png(4000)
    answers = []

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:

            async def send():
                answers.append(await c.post("/predict", content=body))

            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                tg.start_soon(send)

    anyio.run(main)
    assert sorted(r.status_code for r in answers) == [200, 503], [r.text for r in answers]
    busy = next(r for r in answers if r.status_code == 503)
    assert "try again" in one_line_json(busy) and busy.headers["retry-after"] == "5"


def test_a_large_body_hands_its_memory_back_even_when_refused(client, monkeypatch):
    import fashion_cnn.runtime as service

    calls = []
    monkeypatch.setattr(service, "release_memory", lambda: calls.append(1))
    # Two 0.8 MB files (noise does not compress) that each declare too many pixels: refused per file, never decoded.
    noise = np.random.default_rng(0).bytes(800_000)
    files = [("files", (f"{i}.png", png_header_only(5000, 5000) + noise, "image/png")) for i in range(2)]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 200 and [x["status"] for x in r.json()["results"]] == [413, 413]
    assert calls == [1]
    client.post("/predict", content=png())  # a small body: nothing to hand back
    assert calls == [1]


def test_the_default_pixel_cap_is_small():
    """A picture at the cap decodes in about a second on one core (see limits.py for the measurements)."""
    assert Limits().max_pixels <= 16_000_000 and Limits().max_request_pixels <= 2 * Limits().max_pixels


# --- headers: too many, or too large -------------------------------------------------------------------------


def test_too_many_or_too_large_headers_are_refused(client):
    many = {f"x-h{i}": "1" for i in range(200)}
    r = client.get("/health", headers=many)
    assert r.status_code == 431 and "header" in one_line_json(r)
    r = client.get("/health", headers={"x-big": "a" * 100_000})
    assert r.status_code == 431 and "header" in one_line_json(r)


# --- slow and aborted uploads, in the app --------------------------------------------------------------------


def asgi_post(app, path: str, content_type: str, chunks: list, pause: float = 0.0) -> list[dict]:
    """POST to the ASGI app directly: the body arrives as ``chunks``, then ``pause`` seconds of nothing, then the
    client disconnects. Returns what the app sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", content_type.encode()), (b"content-length", b"100000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    pending = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    sent = []

    async def receive():
        if pending:
            return pending.pop(0)
        await anyio.sleep(pause)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    anyio.run(app, scope, receive, send)
    return sent


@pytest.mark.parametrize(
    "path, content_type",
    [("/predict", "image/png"), ("/predict/batch", "multipart/form-data; boundary=xyz")],
)
def test_an_aborted_upload_is_one_info_line(app, caplog, path, content_type):
    caplog.set_level(logging.INFO)
    body = png() if path == "/predict" else b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n' + png()
    asgi_post(app, path, content_type, [body[:500]])
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING], caplog.text
    lines = [r for r in caplog.records if "disconnect" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and "\n" not in lines[0].getMessage()


def test_a_body_that_does_not_arrive_in_time_gets_408(app):
    started = time.monotonic()
    sent = asgi_post(app, "/predict", "image/png", [png()[:100]], pause=5)
    assert time.monotonic() - started < LIMITS.body_timeout + 2
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 408 and (b"connection", b"close") in start["headers"]


# --- the command line ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_serve_refuses_a_non_finite_upload_limit_in_one_line(untrained_model_file, capsys, value):
    from fashion_cnn.cli import main

    assert main(["serve", str(untrained_model_file), f"--max-upload-mb={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--max-upload-mb" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_serve_on_a_busy_port_says_so_in_one_line(untrained_model_file, capsys):
    from fashion_cnn.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(untrained_model_file), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(port) in err and "--port" in err and len(err.splitlines()) == 1


# --- the real server: slow clients are cut off, oversized headers refused ------------------------------------

BODY_TIMEOUT = 2


@pytest.fixture(scope="module")
def server(untrained_model_file):

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "fashion_cnn",
        "serve",
        str(untrained_model_file),
        "--port",
        str(port),
        "--body-timeout",
        str(BODY_TIMEOUT),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_serving(proc, port)
        yield port
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def trickle(port: int, head: bytes, then: bytes, every: float, limit: float) -> tuple[bytes, float]:
    """Send ``head``, then ``then`` one byte every ``every`` seconds; return what the server answered (b"" when it
    closed the connection) and after how long."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        started = time.monotonic()
        s.sendall(head)
        s.settimeout(every)
        for byte in then:
            try:
                answer = s.recv(4096)
                return answer, time.monotonic() - started
            except TimeoutError:
                pass
            try:
                s.sendall(bytes([byte]))
            except OSError:  # the server closed the connection
                return b"", time.monotonic() - started
            if time.monotonic() - started > limit:
                return b"still reading", time.monotonic() - started
        return b"sent everything", time.monotonic() - started


@pytest.mark.slow
def test_a_slow_body_is_cut_off(server):
    head = f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{server}\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n".encode()
    answer, after = trickle(server, head, b"\0" * 1000, every=1.0, limit=BODY_TIMEOUT + 6)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert after < BODY_TIMEOUT + 4


@pytest.mark.slow
def test_slow_headers_are_cut_off(server):
    head = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server}\r\nX-Slow: ".encode()
    answer, after = trickle(server, head, b"a" * 1000, every=0.5, limit=BODY_TIMEOUT + 6)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 408", b"HTTP/1.1 400")), answer[:200]
    assert after < BODY_TIMEOUT + 4


@pytest.mark.slow
@pytest.mark.parametrize(
    "headers", ["X-Big: " + "a" * 100_000 + "\r\n", "".join(f"X-H{i}: 1\r\n" for i in range(200))], ids=["100KB-line", "200-lines"]
)
def test_the_real_server_refuses_oversized_headers(server, headers):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        try:
            s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server}\r\n{headers}\r\n".encode())
        except OSError:  # the server answered and closed before reading it all
            pass
        answer = s.recv(4096)
    assert answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:200]
