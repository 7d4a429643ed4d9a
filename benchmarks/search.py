"""Gallery search: exact vs approximate (usearch HNSW) latency and recall@10, and enrolment speed.

Search: synthetic 64-d unit vectors shaped like embeddings (clusters of about 100
around random centres, noise 0.35, renormalised; or, with --uniform, spread uniformly
over the sphere) at 10k, 100k and 1M vectors; 1,000 queries drawn the same way.
Exact search is the gallery's own (blocked matrix products, distances recomputed
exactly); approximate is its HNSW graph proposing k candidates that are then ranked by
exact distance, as Gallery.nearest does. Latency is per query, one query at a time (as a
server answers), and per query when all 1,000 are batched. recall@10: the share of the
exact 10 nearest that the approximate search returns. With --real SOURCE (and --model),
the same comparison on real embeddings instead: that model's embeddings of the source's
train and validation images as the gallery, 1,000 of its test images as queries.

Enrolment (with --model): 10,000 28x28 PNGs written to a temporary folder (in the page
cache), embedded from disk by the gallery's streaming reader, against the same tower
embedding the same images from an in-memory array, in the same run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/search.py --model output/model.keras
    flock /tmp/heavy.lock .venv/bin/python benchmarks/search.py --model fashion/model.keras --real fashion-mnist
"""

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from keras_siamese.gallery.approximate import ApproximateIndex
from keras_siamese.metrics.neighbours import exact_search, rank_candidates, squared_norms

DIM = 64
K = 10


def embedding_like(n, seed, centres=None, uniform=False):
    """Unit vectors in clusters of about 100 (the same centres for a gallery and its queries), or
    spread uniformly over the sphere (the hardest case for a graph index: no structure at all)."""
    rng = np.random.default_rng(seed)
    if uniform:
        points = rng.standard_normal((n, DIM))
        return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), None
    if centres is None:
        centres = rng.standard_normal((max(1, n // 100), DIM)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = centres[rng.integers(0, len(centres), n)] + 0.35 / np.sqrt(DIM) * rng.standard_normal((n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), centres


def per_query_ms(search, queries, single=200):
    """(ms per query one at a time over `single` queries, ms per query with all queries in one call)."""
    start = time.perf_counter()
    for q in queries[:single]:
        search(q[None])
    one = (time.perf_counter() - start) / single * 1e3
    start = time.perf_counter()
    search(queries)
    return one, (time.perf_counter() - start) / len(queries) * 1e3


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def approximate_search(index, base, queries):
    """As Gallery.nearest: the graph proposes K rows, exact distances rank them."""
    candidates, _ = index.candidates(queries, K)
    return rank_candidates(base, queries, candidates)


def compare_searches(name, base, queries, expansions):
    """One exact row and one approximate row per HNSW search depth for `queries` against `base`."""
    norms = squared_norms(base)
    exact = functools.partial(exact_search, base, k=K, base_norms=norms)
    truth, _ = exact(queries)
    one, batched = per_query_ms(exact, queries, single=50 if len(base) >= 10**6 else 200)
    print(f"{name:>9} {'exact':<22} {'-':>8} {one:>9.3f} {batched:>8.3f} {1.0:>9.3f}", flush=True)
    start = time.perf_counter()
    index = ApproximateIndex(base.shape[1])
    index.add(base)
    build = time.perf_counter() - start
    for expansion in expansions:
        index.expansion_search = expansion
        approximate = functools.partial(approximate_search, index, base)
        found, _ = approximate(queries)
        one, batched = per_query_ms(approximate, queries)
        print(f"{name:>9} {f'approximate ef={expansion}':<22} {build:>8.1f} {one:>9.3f} {batched:>8.3f} "
              f"{recall(found, truth):>9.3f}", flush=True)


HEADER = f"{'vectors':>9} {'search':<22} {'build s':>8} {'ms/query':>9} {'batched':>8} {'recall@10':>9}"


def search_benchmark(sizes, expansions, uniform=False):
    print(HEADER)
    for n in sizes:
        base, centres = embedding_like(n, 0, uniform=uniform)
        queries, _ = embedding_like(1000, 1, centres, uniform)
        compare_searches(n, base, queries, expansions)


def real_benchmark(model_path, source, expansions):
    """Real embeddings: a source's train and validation images as the gallery, 1,000 test images as queries."""
    from keras_siamese.data.sources import load_splits
    from keras_siamese.inference.embedding import embed_images
    from keras_siamese.inference.model_io import load_model

    model = load_model(model_path)
    splits = load_splits(source, shape=model.input_image_shape, progress=False)
    base = np.concatenate([embed_images(model, splits.train.images), embed_images(model, splits.val.images)])
    queries = embed_images(model, splits.test.images[:1000])
    print(f"{source}: {len(base)} gallery embeddings of {model_path}, {len(queries)} test queries")
    print(HEADER)
    compare_searches(len(base), base, queries, expansions)


def enrol_benchmark(model_path, count):
    from PIL import Image

    from keras_siamese.data.sources import load_mnist_sample
    from keras_siamese.inference.embedding import embed_files, embed_images
    from keras_siamese.inference.model_io import load_model

    model = load_model(model_path)
    digits = load_mnist_sample()
    images = digits.images[np.arange(count) % len(digits)]
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, image in enumerate(images):
            path = Path(folder) / f"{digits.labels[i % len(digits)]}" / f"{i:05d}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(image[..., 0]).save(path)
            paths.append(path)
        embed_images(model, images[:2048])  # warm up both paths
        embed_files(model, paths[:2048])
        rates = {}
        for name, run in (("in-memory array", lambda: embed_images(model, images)),
                          ("PNG files, streamed", lambda: embed_files(model, paths))):
            best = min(_timed(run) for _ in range(3))
            rates[name] = count / best
            print(f"{name:<22} {count} images in {best:.2f} s: {rates[name]:,.0f} images/s")
    ratio = rates["PNG files, streamed"] / rates["in-memory array"]
    print(f"enrolment runs at {ratio:.0%} of the tower's in-memory throughput (target >= 80%)")
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes (comma-separated)")
    parser.add_argument("--expansions", default="32,64,128", help="HNSW search depths to try (comma-separated)")
    parser.add_argument("--uniform", action="store_true", help="vectors uniform on the sphere instead of clustered")
    parser.add_argument("--model", help="a model file, for the enrolment benchmark (and --real)")
    parser.add_argument("--real", metavar="SOURCE", help="instead: real embeddings of SOURCE (e.g. fashion-mnist)")
    parser.add_argument("--images", type=int, default=10_000, help="images to enrol (default 10,000)")
    args = parser.parse_args()
    expansions = [int(e) for e in args.expansions.split(",")]
    if args.real:
        return real_benchmark(args.model, args.real, expansions)
    search_benchmark([int(s) for s in args.sizes.split(",")], expansions, args.uniform)
    if args.model:
        enrol_benchmark(args.model, args.images)


if __name__ == "__main__":
    main()
