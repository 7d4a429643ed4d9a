"""Bad inputs and faults, tried as `siamese` commands on a small folder and model made here.

For each case: the command, its exit status, the first line it printed on stderr,
its wall time and peak resident memory (a watchdog kills any command past `--cap`
GB, reported as such), and what it left on disk. Prints a Markdown table.

    python benchmarks/reliability.py                  # work folder: a fresh temporary one
    python benchmarks/reliability.py --work /tmp/rel --cap 6

Run nothing else meanwhile: memory and time are per command.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIAMESE = str(Path(sys.executable).parent / "siamese")
MARK = ".siamese-reliability"  # in a work folder this benchmark made, so that a rerun may replace it
QUICK = ["--epochs", "1", "--batch-size", "12", "--images-per-class", "4", "--embedding-dim", "8", "--quiet"]


def run(argv, cap_bytes, signal_at=None, signal_number=signal.SIGTERM):
    """Run `siamese argv`, sending `signal_number` once `signal_at()` is true (polled every 10 ms), if given.

    Returns (status, first stderr line, seconds, peak RSS bytes, killed by the cap, stderr lines, last stdout
    line). Both pipes are read at the end: enough for these commands' short output."""
    started = time.perf_counter()
    process = subprocess.Popen([SIAMESE, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    capped, ended = threading.Event(), threading.Event()

    def watch():  # never polls the process: wait4 below must be the one to collect it, with its peak memory
        pending = signal_at is not None
        while not ended.is_set():
            if rss(process.pid) > cap_bytes:  # os.kill: Popen.kill would poll, and could collect the child
                capped.set()
                os.kill(process.pid, signal.SIGKILL)
            if pending and signal_at():
                os.kill(process.pid, signal_number)
                pending = False
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    _, status, usage = os.wait4(process.pid, 0)
    ended.set()
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.stdout.read().strip().splitlines(), process.stderr.read().strip().splitlines()
    return (process.returncode, err[0] if err else "", time.perf_counter() - started, usage.ru_maxrss * 1024,
            capped.is_set(), len(err), out[-1] if out else "")


def rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def ours(folder):
    """Our temporary and lock files left in `folder`."""
    return sorted(p.name for p in Path(folder).iterdir() if ".siamese-tmp-" in p.name or ".siamese-lock" in p.name)


def make_folder(root, classes=("circle", "square", "cross"), per_class=8, size=16):
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size), dtype=np.uint8)
            image[(c // 2) * 8 : (c // 2) * 8 + 8, (c % 2) * 8 : (c % 2) * 8 + 8] += 180
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path,
                        help="work folder: a new or empty one, or one an earlier run made (its contents are "
                             "replaced); default a new temporary folder")
    parser.add_argument("--cap", type=float, default=6.0, help="kill a command past this many GB resident")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="siamese-reliability-"))
    if work.is_dir() and any(work.iterdir()):
        if not (work / MARK).is_file():
            raise SystemExit(f"--work {work}: holds files this benchmark did not make; give a new or empty folder")
        shutil.rmtree(work)
    elif work.exists() and not work.is_dir():
        raise SystemExit(f"--work {work}: is a file")
    work.mkdir(parents=True, exist_ok=True)
    (work / MARK).write_text("made by benchmarks/reliability.py; the next run with --work here replaces it\n")
    cap = int(args.cap * 1e9)
    folder = make_folder(work / "images")
    model = work / "out" / "model.keras"
    assert run(["train", "--data", folder, "--output", work / "out", *QUICK], cap)[0] == 0
    a_file = work / "a-file"
    a_file.write_text("x")
    big = work / "big"
    big.mkdir()
    Image.new("L", (13_000, 13_000)).save(big / "0.png")
    for i in range(1, 4):
        shutil.copy(big / "0.png", big / f"{i}.png")
    rows = []

    def case(name, argv, note=lambda: "", **kwargs):
        status, line, seconds, peak, capped, lines, last = run(argv, cap, **kwargs)
        shown = " ".join(str(a).replace(str(work), "W") for a in argv)
        outcome = f"killed at the {args.cap:g} GB cap" if capped else f"exit {status}"
        rows.append((name, f"`siamese {shown}`", outcome, line.replace(str(work), "W"), f"{seconds:.1f}",
                     f"{peak / 1e6:,.0f}", f"{lines}", note() or f"stdout: {last.replace(str(work), 'W')}"))
        print(rows[-1], flush=True)

    case("4 PNGs of 13,000 x 13,000 (2 MB on disk)", ["pairs", "--model", model, "--input", big,
                                                        "--output", work / "p.png"])
    case("the same, limit raised past them", ["pairs", "--model", model, "--input", big, "--output",
                                              work / "p.png", "--max-pixels", "200000000"])
    case("--image-size 5000 on mnist-sample", ["train", "--image-size", "5000", "--output", work / "o1", *QUICK])
    case("--batch-size 100000 on mnist-sample", ["train", "--batch-size", "100000", "--epochs", "1",
                                                 "--output", work / "o2", "--quiet"])
    case("--output is an existing file", ["train", "--data", folder, "--output", a_file, *QUICK])
    case("--output in a read-only place", ["train", "--data", folder, "--output", "/sys/kernel/x", *QUICK])
    case("--output under a file", ["evaluate", "--model", model, "--output", a_file / "eval"])
    case("calibrate --output x.h5", ["calibrate", "--model", model, "--output", work / "x.h5"])
    real = work / "real.keras"
    shutil.copy(model, real)
    real.chmod(0o400)
    link = work / "link.keras"
    link.symlink_to(real)
    case("calibrate through a symlink to a 0400 model", ["calibrate", "--model", link, "--data", folder, "--quiet"],
         note=lambda: f"link kept: {link.is_symlink()}, target mode {oct(real.stat().st_mode & 0o777)}")
    both = work / "both.keras"
    shutil.copy(model, both)
    slow = work / "slow"  # 18 images of 6,000 x 6,000: calibrating on them takes seconds, so the runs overlap
    for c in range(3):
        (slow / str(c)).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (6000, 6000), 40 * c + i).save(slow / str(c) / f"{i}.png")
    other = threading.Thread(target=case, args=("two calibrates of one model at once: A",
                                                ["calibrate", "--model", both, "--data", slow, "--quiet"]))
    other.start()
    time.sleep(1.5)
    case("two calibrates of one model at once: B", ["calibrate", "--model", both, "--data", slow, "--quiet"])
    other.join()
    started = time.monotonic()
    case("SIGTERM 10 s into training", ["train", "--output", work / "o3", "--quiet"],
         signal_at=lambda: time.monotonic() - started > 10, note=lambda: f"folder made: {(work / 'o3').exists()}")
    (work / "o4").mkdir()
    case("SIGTERM while train writes its outputs", ["train", "--data", folder, "--output", work / "o4", *QUICK],
         signal_at=lambda: bool(ours(work / "o4")), note=lambda: f"left: {ours(work / 'o4')}")
    killed = work / "killed.keras"
    shutil.copy(model, killed)
    case("kill -9 while calibrate writes the model", ["calibrate", "--model", killed, "--data", folder, "--quiet"],
         signal_at=lambda: any(".siamese-tmp-" in n for n in ours(work)), signal_number=signal.SIGKILL,
         note=lambda: f"left: {ours(work)}")
    case("the next calibrate beside it", ["calibrate", "--model", model, "--data", folder, "--output",
                                          work / "next.keras", "--quiet"], note=lambda: f"left: {ours(work)}")
    case("calibrate with no --data, tiny val split", ["calibrate", "--model", model])
    case("a folder as --model", ["compare", "--model", work / "out", folder / "circle/0.png", folder / "circle/1.png"])
    loop = work / "loop.keras"
    loop.symlink_to(loop)
    case("a symlink loop as --model", ["compare", "--model", loop, folder / "circle/0.png", folder / "circle/1.png"])
    case("samples --count 100000", ["samples", "--data", folder, "--output", work / "s", "--count", "100000"])
    accents = make_folder(work / "accents", classes=("café", "cafè", "cafe"), per_class=6)
    case("classes differing in accents only", ["samples", "--data", accents, "--output", work / "s2", "--count", "6"],
         note=lambda: ", ".join(sorted(p.name for p in (work / "s2").iterdir())))

    print("\n| case | command | outcome | stderr (first line) | s | peak MB | stderr lines | note |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
