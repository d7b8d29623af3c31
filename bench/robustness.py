"""Robustness of ``fashion-cnn predict`` on photos: test-set images as photo-like files vs. the images themselves.

    python bench/robustness.py /tmp/runs/full1 --data-dir ../shared/data/fashion-mnist
    python bench/robustness.py runs/NAME --data-dir ../shared/data/fashion-mnist --limit 2000 --json

Each test image (a light garment on black, 28×28) is written as a file in several ways, and the files are
classified exactly as ``fashion-cnn predict RUN FILE...`` does (``load_image`` from the path, then the model):

- ``direct``: the uint8 images fed to the model, no file and no preprocessing (the tutorial's evaluate);
- ``png 28×28``: each image saved as a PNG as it is: preprocessing a Fashion-MNIST image should change little;
- ``photo-like JPEG``: enlarged 4–10×, turned into a dark garment on an off-white (215–250), unevenly lit,
  noisy background with random margins of 10–60% on each side (so the garment is shifted off-centre),
  JPEG quality 70–92 (``bench/photolike.py``);
- ``table photo``: 640×480, on a grainy white table with a soft shadow, JPEG 85 (``table_photo``);
- ``photo-like, no preprocessing``: the photo-like files with inversion, trimming and levelling turned off
  (only the resize): what happens without the Fashion-MNIST-style steps.

The gap between ``direct`` and the photo files is the cost of going through a camera-like picture; a large
gap means the preprocessing is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run directory or .safetensors model (not modified)")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST .gz files (default: $FASHION_CNN_DATA, the cache)")
    p.add_argument("--limit", type=int, help="use only the first N test images (default: all 10,000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the photo-like variations (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)

    import torch

    from fashion_cnn.data import load_dataset
    from fashion_cnn.data.images import Preprocessing, load_image, to_png
    from fashion_cnn.inference.predict import predict_proba
    from fashion_cnn.models.files import load_model
    from photolike import photo_like, table_photo

    torch.set_num_threads(1)  # the work here is decoding; threads below decode pictures side by side
    model = load_model(args.run)
    name = model.meta.get("dataset", {}).get("name", "fashion-mnist")
    test = load_dataset(name, args.data_dir).test
    if args.limit:
        test = test.subset(slice(0, args.limit))
    n = len(test)
    started = time.perf_counter()

    def accuracy(images: np.ndarray) -> float:
        return float((predict_proba(model, images).argmax(1) == test.labels).mean())

    results = {"images": n, "run": str(args.run), "seed": args.seed}
    results["direct"] = accuracy(test.images)
    with tempfile.TemporaryDirectory(prefix="fashion-cnn-robustness-") as tmp, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        tmp = Path(tmp)

        def write(kind: str, make) -> list[Path]:
            rng = np.random.default_rng(args.seed)  # the same draws for every image, whichever order they run in
            seeds = rng.integers(0, 2**63, n)
            paths = [tmp / kind / f"{i:05d}.{'png' if kind == 'png' else 'jpg'}" for i in range(n)]
            (tmp / kind).mkdir()

            def one(i):
                paths[i].write_bytes(make(test.images[i], np.random.default_rng(seeds[i])))

            list(pool.map(one, range(n)))
            return paths

        def from_files(paths, options=Preprocessing()) -> float:
            return accuracy(np.stack(list(pool.map(lambda f: load_image(f, options), paths))))

        pngs = write("png", lambda image, rng: to_png(image))
        results["png_28x28"] = from_files(pngs)
        photos = write("photo", photo_like)
        sizes = [Image.open(f).size for f in photos[:200]]
        results["photo_like_jpeg"] = from_files(photos)
        results["photo_like_no_preprocessing"] = from_files(photos, Preprocessing(invert="never", trim=False, level=False))
        results["table_photo"] = from_files(write("table", table_photo))
        results["photo_sizes"] = f"{min(w for w, _ in sizes)}–{max(w for w, _ in sizes)} px wide (first 200)"
    results["seconds"] = round(time.perf_counter() - started, 1)

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.run} on the first {n:,} test images ({results['seconds']} s):\n")
    print("| input | accuracy | vs direct |")
    print("|---|---:|---:|")
    for key, label in (
        ("direct", "direct (the images themselves)"),
        ("png_28x28", "28×28 PNG files"),
        ("photo_like_jpeg", f"photo-like JPEG files ({results['photo_sizes']})"),
        ("table_photo", "640×480 table photos"),
        ("photo_like_no_preprocessing", "photo-like files, preprocessing off"),
    ):
        gap = "" if key == "direct" else f"{100 * (results[key] - results['direct']):+.2f} pts"
        print(f"| {label} | {results[key]:.2%} | {gap} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
