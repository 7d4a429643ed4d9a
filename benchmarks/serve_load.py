"""Load on the running service: N concurrent clients on 127.0.0.1 for a bounded time.

Reports, for /compare and /search: answered requests per second, p50 and p99 latency
(of every request, a failed one at the time it took to fail), errors (any answer but
200, or a failed connection), and the server's resident memory
(from GET /health) after a warm-up and at the end. Queries are 28x28 PNG digits from
mnist-sample, uploaded as multipart forms prepared in advance; each client keeps one
HTTP/1.1 connection open, as a browser or a service client would.

Without --url, the script starts `siamese serve --model M --gallery G` itself on a free port
and stops it at the end.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/serve_load.py --model output/model.keras \
        --gallery gallery.npz --clients 8 --seconds 20
"""

import argparse
import contextlib
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlparse

import numpy as np


def multipart(fields):
    """A multipart/form-data body and its content type from (name, filename or None, bytes) fields."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        kind = b"Content-Type: image/png\r\n" if filename else b""
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode() + kind + b"\r\n" + data
                     + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def digit_pngs(count=64):
    from PIL import Image

    from keras_siamese.data.sources import load_mnist_sample

    digits = load_mnist_sample().images[:: 5000 // count][:count]
    out = []
    for image in digits:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0]).save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def requests_for(endpoint, pngs, rng, count=256):
    if endpoint == "/compare":
        return [multipart([("image_a", "a.png", pngs[i]), ("image_b", "b.png", pngs[j])])
                for i, j in rng.integers(0, len(pngs), (count, 2))]
    return [multipart([("image", "q.png", pngs[i]), ("k", None, b"5")]) for i in rng.integers(0, len(pngs), count)]


def drive(url, endpoint, bodies, clients, seconds):
    """Run `clients` threads posting `bodies` round robin for `seconds`; latencies (s) and error count."""
    host, port = urlparse(url).hostname, urlparse(url).port
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset):
        connection = http.client.HTTPConnection(host, port, timeout=30)
        mine, failed, i = [], 0, offset
        while time.perf_counter() < deadline:
            body, kind = bodies[i % len(bodies)]
            i += clients
            start = time.perf_counter()
            try:
                connection.request("POST", endpoint, body, {"Content-Type": kind})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
            mine.append(time.perf_counter() - start)  # a failed request too: a timeout is a slow answer
            failed += not ok
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return np.array(latencies), errors[0], time.perf_counter() - started


def get_json(url, path):
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    connection.request("GET", path)
    return json.loads(connection.getresponse().read())


@contextlib.contextmanager
def server(model, gallery):
    """`siamese serve` on a free port of 127.0.0.1 in a child process; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-c", "import sys; from keras_siamese.cli import main; sys.exit(main())", "serve",
               "--model", model, "--port", str(port)] + (["--gallery", gallery] if gallery else [])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get_json(url, "/health")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start one with --model and --gallery)")
    parser.add_argument("--model", help="model file for the server this script starts")
    parser.add_argument("--gallery", help="gallery file for the server this script starts (needed for /search)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20, help="per endpoint (default 20)")
    parser.add_argument("--endpoints", default="/compare,/search")
    args = parser.parse_args()
    if not args.url and not args.model:
        parser.error("give --url of a running server, or --model (and --gallery) to start one")
    pngs, rng = digit_pngs(), np.random.default_rng(0)
    with contextlib.nullcontext(args.url) if args.url else server(args.model, args.gallery) as url:
        for endpoint in args.endpoints.split(","):
            drive(url, endpoint, requests_for(endpoint, pngs, rng, 32), args.clients, 2)  # warm-up: trace shapes
        rss_start = get_json(url, "/health")["rss_bytes"]
        print(f"{args.clients} clients, {args.seconds:g} s per endpoint, 28x28 PNGs, server {url}")
        print(f"{'endpoint':<10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for endpoint in args.endpoints.split(","):
            latencies, errors, elapsed = drive(url, endpoint, requests_for(endpoint, pngs, rng), args.clients,
                                               args.seconds)
            p50, p99 = (np.percentile(latencies, [50, 99]) * 1e3) if len(latencies) else (float("nan"),) * 2
            print(f"{endpoint:<10} {len(latencies):>9} {(len(latencies) - errors) / elapsed:>8.1f} {p50:>8.1f} "
                  f"{p99:>8.1f} {errors:>7}", flush=True)
        info = get_json(url, "/info")
        rss_end = get_json(url, "/health")["rss_bytes"]
    batches = info["batches"]
    print(f"micro-batches: {batches['images']} images in {batches['calls']} tower calls "
          f"({batches['images'] / max(batches['calls'], 1):.1f} per call)")
    print(f"server memory (RSS): {rss_start / 2**20:.0f} MiB after warm-up, {rss_end / 2**20:.0f} MiB at the end")
    print(f"load average at the end (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
