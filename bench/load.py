"""Load test of ``fashion-cnn serve``: concurrent single-picture POST /predict against a local uvicorn.

    python bench/load.py /tmp/runs/full1                       # 30 s, 8 connections, a 28×28 PNG
    python bench/load.py /tmp/runs/full1 --image tests/data/sneaker-on-table.jpg --seconds 10
    python bench/load.py /tmp/runs/full1 --engine onnx         # after: fashion-cnn export /tmp/runs/full1 --format onnx
    python bench/load.py /tmp/runs/full1 --hostile --seconds 20  # a small request's latency under 2 hostile batch senders

Starts the server exactly as a user would (``python -m fashion_cnn serve RUN --port P``, a free port on
127.0.0.1), waits for /health, warms up for 2 s, then keeps ``--connections`` keep-alive connections busy for
``--seconds`` and prints requests per second, latency percentiles and the error count (any status but 200,
or a failed connection). The client is a few lines of asyncio on raw sockets so that it takes as little of
the machine's CPU as possible from the server it measures. Traffic goes to 127.0.0.1 only; the run is bounded
in time (at most 300 s) and in requests (``--max-requests``), and the server is stopped at the end.

``--hostile``: one client sends the small picture, one request at a time, while ``--attackers`` threads (2) each
send ``/predict/batch`` uploads of ``--attack-files`` (64) cheap-to-send, costly-to-decode PNGs (``--attack-side``
pixels a side, RGBA: 6000 → 36 M pixels in ~150 KB) back to back. It prints the small request's latency
percentiles, what the hostile batches were answered, and the server's memory (RSS) before, at its peak and
after 3 s of quiet: is one client kept from starving the others, and is the memory handed back?
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"  # never anything else: this bench talks to a server it started on this machine
ROOT = Path(__file__).resolve().parents[1]
SNEAKER = ROOT / "tests" / "data" / "sneaker-on-table.jpg"


def default_image() -> bytes:
    """A 28×28 PNG: the sneaker photo as the model sees it (what a Fashion-MNIST-sized client would send)."""
    from fashion_cnn.data.images import load_image, to_png

    return to_png(load_image(SNEAKER))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(run: str, port: int, workers: int, engine: str = "torch") -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "fashion_cnn",
        "serve",
        run,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--engine",
        engine,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("the server did not answer /health within 60 s")


def rss_mb(pid: int) -> float:
    """The server's resident memory (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def hostile_png(side: int) -> bytes:
    """A ``side``×``side`` RGBA PNG that compresses to almost nothing: all its cost is in decoding it."""
    import io

    import numpy as np
    from PIL import Image

    a = np.zeros((side, side, 4), np.uint8)
    a[..., 3] = 255
    a[side // 4 : side // 2, side // 4 : side // 2] = (10, 200, 30, 128)
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "benchboundary7d1f"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + data
        + b"\r\n"
        for name, data in files
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def hostile(port: int, pid: int, small: bytes, args) -> dict:
    """A small request's latency while ``args.attackers`` threads send worst-case batches (see the module's doc)."""
    import http.client
    import threading

    big = hostile_png(args.attack_side)
    body, content_type = multipart([(f"big{i}.png", big) for i in range(args.attack_files)])
    small_type = "image/jpeg" if small[:2] == b"\xff\xd8" else "image/png"
    stop = time.monotonic() + args.seconds  # no warm-up: every small request counts, the first one too
    wait = args.seconds + 5  # no answer by then: a timeout, counted as an error with that latency
    out = {"latencies": [], "errors": 0, "attack_status": {}, "attack_seconds": [], "peak_rss_mb": rss_mb(pid)}
    lock = threading.Lock()
    rss_before = rss_mb(pid)

    def post(conn, path, data, ctype):
        conn.request("POST", path, body=data, headers={"Content-Type": ctype, "Host": f"{HOST}:{port}"})
        r = conn.getresponse()
        r.read()
        return r.status

    def attacker():
        while time.monotonic() < stop:
            conn = http.client.HTTPConnection(HOST, port, timeout=wait)
            t0 = time.perf_counter()
            try:
                status = post(conn, "/predict/batch", body, content_type)
            except OSError as e:
                status = type(e).__name__
            finally:
                conn.close()
            with lock:
                out["attack_status"][str(status)] = out["attack_status"].get(str(status), 0) + 1
                out["attack_seconds"].append(time.perf_counter() - t0)

    def watcher():
        while time.monotonic() < stop:
            with lock:
                out["peak_rss_mb"] = max(out["peak_rss_mb"], rss_mb(pid))
            time.sleep(0.1)

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(args.attackers)]
    threads.append(threading.Thread(target=watcher, daemon=True))
    for t in threads:
        t.start()
    conn = http.client.HTTPConnection(HOST, port, timeout=wait)
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        try:
            status = post(conn, "/predict", small, small_type)
        except OSError:
            status = None
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=wait)
        out["latencies"].append(time.perf_counter() - t0)
        out["errors"] += status != 200
        time.sleep(0.05)  # a person's pace, not a flood: the attackers should own the load
    conn.close()
    for t in threads:
        t.join(wait)
    time.sleep(3)
    lat = sorted(out["latencies"])

    def pct(q):
        return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else float("nan")

    return {
        "small_requests": len(lat),
        "errors": out["errors"],
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": round(1000 * lat[-1], 1) if lat else None,
        "attack": f"{args.attackers} threads x /predict/batch of {args.attack_files} RGBA PNGs {args.attack_side}x{args.attack_side} "
        f"({len(big):,} bytes each, {len(body):,} per request)",
        "attack_answers": out["attack_status"],
        "attack_mean_s": round(sum(out["attack_seconds"]) / len(out["attack_seconds"]), 2) if out["attack_seconds"] else None,
        "rss_mb_before": round(rss_before),
        "rss_mb_peak": round(out["peak_rss_mb"]),
        "rss_mb_after_3s_idle": round(rss_mb(pid)),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (Linux), to tell the server's cost per request
    from the time it spent waiting for a core while other programs ran."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _request(reader, writer, payload: bytes) -> int:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _connection(port: int, payload: bytes, until: float, record_from: float, budget: list[int], out: dict) -> None:
    reader = writer = None
    while time.perf_counter() < until and budget[0] > 0:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            budget[0] -= 1
            t0 = time.perf_counter()
            status = await asyncio.wait_for(_request(reader, writer, payload), timeout=10)
            t1 = time.perf_counter()
            if t0 >= record_from:
                out["latencies"].append(t1 - t0)
                if status != 200:
                    out["errors"] += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            out["errors"] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(port: int, body: bytes, content_type: str, seconds: float, warmup: float, connections: int, max_requests: int) -> dict:
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    payload = head + body
    start = time.perf_counter()
    record_from, until = start + warmup, start + warmup + seconds
    out = {"latencies": [], "errors": 0}
    budget = [max_requests]
    await asyncio.gather(*(_connection(port, payload, until, record_from, budget, out) for _ in range(connections)))
    elapsed = min(time.perf_counter(), until) - record_from
    lat = sorted(out["latencies"])

    def pct(q):
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    return {
        "requests": len(lat),
        "errors": out["errors"],
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(lat) / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(1000 * lat[-1], 2) if lat else None,
        "connections": connections,
        "body_bytes": len(body),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or .safetensors model to serve")
    p.add_argument("--image", help="picture to send (default: a 28×28 PNG of the sneaker in tests/data)")
    p.add_argument("--seconds", type=float, default=30, help="measured duration (default 30, at most 300)")
    p.add_argument("--warmup", type=float, default=2, help="unmeasured seconds first (default 2)")
    p.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections (default 8)")
    p.add_argument("--workers", type=int, default=2, help="the server's --workers (default 2)")
    p.add_argument("--engine", choices=("torch", "onnx"), default="torch", help="the server's --engine (onnx needs RUN/model.onnx)")
    p.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests whatever the time")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--hostile", action="store_true", help="measure one client's latency while others send worst-case batches")
    p.add_argument("--attackers", type=int, default=2, help="--hostile: threads sending batches (default 2)")
    p.add_argument("--attack-files", type=int, default=64, help="--hostile: pictures per batch (default 64)")
    p.add_argument("--attack-side", type=int, default=6000, help="--hostile: side of each RGBA PNG in pixels (default 6000)")
    args = p.parse_args(argv)
    if not 0 < args.seconds <= 300 or not 0 < args.connections <= 256:
        p.error("--seconds must be in (0, 300] and --connections in 1..256")
    body = Path(args.image).read_bytes() if args.image else default_image()
    content_type = "image/jpeg" if body[:2] == b"\xff\xd8" else "image/png"
    port = free_port()
    server = start_server(args.run, port, args.workers, args.engine)
    if args.hostile:
        try:
            result = hostile(port, server.pid, body, args)
        finally:
            stop_server(server)
        print(json.dumps(result, indent=2))
        return 1 if result["errors"] else 0
    try:
        cpu0, client0 = cpu_seconds(server.pid), time.process_time()
        result = asyncio.run(load(port, body, content_type, args.seconds, args.warmup, args.connections, args.max_requests))
        cpu1, client1 = cpu_seconds(server.pid), time.process_time()
    finally:
        stop_server(server)
    total = result["requests"] * (args.seconds + args.warmup) / args.seconds  # warm-up requests used CPU too
    result["server_cpu_ms_per_request"] = round(1000 * (cpu1 - cpu0) / total, 3) if total else None
    result["client_cpu_ms_per_request"] = round(1000 * (client1 - client0) / total, 3) if total else None
    result["load_average_1min"] = os.getloadavg()[0]
    result["image"] = args.image or "28x28 PNG of tests/data/sneaker-on-table.jpg"
    result["engine"] = args.engine
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['requests']:,} requests in {result['seconds']} s over {args.connections} connections, engine {args.engine} ({result['image']}, {len(body):,} bytes)"
        )
        print(
            f"  {result['requests_per_second']:,.1f} req/s   p50 {result['p50_ms']} ms   p90 {result['p90_ms']} ms   p99 {result['p99_ms']} ms   max {result['max_ms']} ms   errors {result['errors']}"
        )
        print(
            f"  server CPU {result['server_cpu_ms_per_request']} ms/request, client CPU {result['client_cpu_ms_per_request']} ms/request, "
            f"load average {result['load_average_1min']:.1f} on {os.cpu_count()} cores"
        )
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
