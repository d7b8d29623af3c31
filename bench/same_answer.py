"""Do the test images get the same answer as files as they do as arrays? (issue 10, "one answer on every path")

    python bench/same_answer.py runs/tutorial --data-dir ../shared/data/fashion-mnist

Saves the 10,000 test images as 28×28 PNGs, reads them back the way ``predict FILE`` and ``POST /predict`` do
(``load_image``), and prints the accuracy through files and directly, how many images preprocessing changed and
how many labels differ.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import fashion_cnn as fc
from fashion_cnn.data.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run directory or model file")
    parser.add_argument("--data-dir", help="the Fashion-MNIST folder (default: the cache)")
    args = parser.parse_args()
    test = fc.load_split("test", data_dir=args.data_dir)
    model = fc.load_model(args.run)
    direct = fc.predict_proba(model, test.images).argmax(1)
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for i, image in enumerate(test.images):
            files.append(Path(folder) / f"{i:05d}.png")
            Image.fromarray(image, "L").save(files[-1])
        inputs = np.stack([load_image(f) for f in files])
    changed = int((inputs != test.images).reshape(len(files), -1).any(1).sum())
    through = fc.predict_proba(model, inputs).argmax(1)
    print(
        f"direct {np.mean(direct == test.labels):.4f}  through files {np.mean(through == test.labels):.4f}  "
        f"images changed {changed:,}  labels differing {int((direct != through).sum()):,}"
    )


if __name__ == "__main__":
    main()
