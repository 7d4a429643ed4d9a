"""Scale-out figures: streaming a large folder from disk, and 1 against 2 devices.

Writes class folders of PNGs sampled from Fashion-MNIST's training images (each
randomly shifted and mirrored, so no two files are alike), then, each in a fresh
process and timed by a callback around the training epoch only:

- two epochs streamed from disk against the same epochs from memory, on the largest folder: the first
  streamed epoch decodes every file, the second reads the decoded pixels back from the disk cache;
- the peak resident memory of two streamed epochs at three folder sizes (plot: memory against size);
- training images/s on 1 and 2 devices (2 virtual CPU devices where there is no accelerator).

    python benchmarks/scale.py --sizes 20000 63000 200000 --root /tmp/scale

Run nothing else meanwhile: the timings are wall-clock.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from machine import cpu_model


def make_folder(root, count, seed=0):
    """`count` PNGs in 10 class folders under `root`, sampled from Fashion-MNIST train with random shifts
    and mirroring; kept when already complete."""
    from PIL import Image

    from keras_siamese.data.sources import load_idx_source

    marker = root / "complete.json"
    if marker.is_file():
        return root
    train, _, _ = load_idx_source("fashion-mnist")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(train), count)
    shifts = rng.integers(-3, 4, (count, 2))
    mirror = rng.random(count) < 0.5
    for name in train.class_names:
        (root / "images" / name.replace("/", "-")).mkdir(parents=True, exist_ok=True)
    for i, (pick, shift, flip) in enumerate(zip(picks, shifts, mirror)):
        image = np.roll(train.images[pick, ..., 0], tuple(shift), axis=(0, 1))
        image = image[:, ::-1] if flip else image
        label = train.class_names[train.labels[pick]].replace("/", "-")
        Image.fromarray(np.ascontiguousarray(image)).save(root / "images" / label / f"{i:07d}.png")
    marker.write_text(json.dumps({"images": count}))
    return root


def child(args):
    """One measured training run in this process; prints one JSON line."""
    import keras

    import keras_siamese as ks

    class EpochTimer(keras.callbacks.Callback):
        """Each epoch's training steps: from its start to its last batch's end, before the validation that the
        trainer's callbacks run at the epoch end."""

        seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last_batch = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self.last_batch - self.start)

    from keras_siamese.data.sources import load_idx_source

    data = args.data
    if data == "fashion-arrays":  # in memory, no folder: the devices comparison
        train, _, _ = load_idx_source("fashion-mnist")
        data = (train.images[: args.limit], train.labels[: args.limit])
    timer = EpochTimer()
    started = time.perf_counter()
    trainer = ks.Trainer(data, progress=False, epochs=args.epochs, stream=args.stream, devices=args.devices,
                         val_fraction=0.02, patience=0, image_size=(28, 28), channels=1)
    trainer.prepare().build()
    loaded = time.perf_counter() - started
    trainer.fit(callbacks=[timer])
    steps = len(trainer.batches)
    images = steps * trainer.batches.rows
    print(json.dumps({"epoch_seconds": timer.seconds, "images": images, "images_per_s": images / timer.seconds[-1],
                      "first_images_per_s": images / timer.seconds[0], "prepare_seconds": loaded,
                      "train_images": len(trainer.splits.train)}))


def measured(argv):
    """Run a child; its JSON line, with the process's peak resident memory in MiB."""
    process = subprocess.Popen([sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(argv)} failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mib"] = usage.ru_maxrss / 1024
    return result


def plot(sizes, peaks, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.4))
    axes.plot(sizes, peaks, "o-")
    axes.set_xscale("log")
    axes.set_xlabel("images in the folder")
    axes.set_ylabel("peak resident memory (MiB)")
    axes.set_ylim(0, max(peaks) * 1.3)
    axes.set_title("siamese train --stream, two epochs")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=3, default=[20_000, 63_000, 200_000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/keras-siamese-scale"))
    parser.add_argument("--device-images", type=int, default=12_000, help="images for the 1-vs-2-device runs")
    parser.add_argument("--plot", type=Path, default=Path("docs/scale_memory.png"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--stream", type=json.loads, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores")
    folders = {}
    for size in args.sizes:
        started = time.perf_counter()
        folders[size] = make_folder(args.root / str(size), size) / "images"
        print(f"folder of {size:,} PNGs ready in {time.perf_counter() - started:.0f} s")

    largest = max(args.sizes)
    print("\nStreaming against memory, two epochs of the largest folder (training steps only):")
    memory = measured(["--child", "--data", str(folders[largest]), "--stream", "false", "--epochs", "2"])
    streamed = measured(["--child", "--data", str(folders[largest]), "--stream", "true", "--epochs", "2"])
    for name, run in (("in memory", memory), ("streamed", streamed)):
        print(f"  {name:>9}: epochs {', '.join(f'{s:.1f}' for s in run['epoch_seconds'])} s; "
              f"{run['first_images_per_s']:,.0f} then {run['images_per_s']:,.0f} images/s; "
              f"prepare {run['prepare_seconds']:.1f} s, peak {run['peak_mib']:,.0f} MiB")
    print(f"  streamed / in memory images/s, first epoch (decoding): "
          f"{streamed['first_images_per_s'] / memory['first_images_per_s']:.2f}; second epoch (cached): "
          f"{streamed['images_per_s'] / memory['images_per_s']:.2f} (target >= 0.80)")

    print("\nPeak memory of two streamed epochs against folder size:")
    peaks = []
    for size in sorted(args.sizes):  # smallest first: the ratio below is largest / smallest
        run = streamed if size == largest else measured(["--child", "--data", str(folders[size]), "--stream", "true",
                                                         "--epochs", "2"])
        peaks.append(run["peak_mib"])
        print(f"  {size:>9,} images: peak {run['peak_mib']:,.0f} MiB, {run['images_per_s']:,.0f} images/s")
    print(f"  peak at {largest:,} / peak at {min(args.sizes):,}: {peaks[-1] / peaks[0]:.3f} (target <= 1.2)")
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(sorted(args.sizes), peaks, args.plot)
    print(f"  plot: {args.plot}")

    print(f"\nDevices, in-memory Fashion-MNIST ({args.device_images:,} images, second of two epochs):")
    rates = {}
    for devices in (1, 2):
        run = measured(["--child", "--data", "fashion-arrays", "--limit", str(args.device_images),
                        "--devices", str(devices), "--epochs", "2"])
        rates[devices] = run["images_per_s"]
        print(f"  {devices} device(s): {run['images_per_s']:,.0f} images/s")
    print(f"  2 / 1 devices: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
