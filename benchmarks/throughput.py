"""Throughput against the machine's limit: FLOPs per image of each tower, the GFLOP/s that training and
embedding reach and their share of the CPU's fp32 peak, a per-stage profile of one training step, and the
share of `siamese train --data mnist-sample` wall time spent outside training steps.

    python benchmarks/throughput.py --data mnist5k
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/throughput.py --data mnist5k   # AVX2 kernels, AVX2 peak

FLOPs count the multiply-adds of the Conv2D, DepthwiseConv2D and Dense layers from the built model's
shapes, 2 FLOP each; pooling, batch norm, activations and the loss are counted as free. A trained image
costs 3x its forward pass (forward, gradient with respect to the activations, gradient with respect to the
weights, each about one forward's multiply-adds). The profile and the images/s use the TensorFlow
backend (the default). Run nothing else meanwhile: the timings are wall-clock.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peers  # noqa: E402  (the side-by-side training and embedding throughput lives there)

FMA_UNITS = 2  # fp32 FMA pipes per core: every AMD core since Zen 1 and Intel core since Haswell


def cpu_info():
    """Model name, vendor, family, flags, usable cores and clock (MHz, and where it came from)."""
    fields = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    listed = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    listed = {k.strip(): v.strip() for k, v in listed.items()}
    if listed.get("CPU max MHz"):
        mhz, source = float(listed["CPU max MHz"]), "lscpu 'CPU max MHz'"
    elif fields.get("cpu MHz"):
        mhz, source = float(fields["cpu MHz"]), "/proc/cpuinfo 'cpu MHz' (no max clock reported)"
    else:
        mhz, source = float(listed["BogoMIPS"]) / 2, "lscpu 'BogoMIPS' / 2"
    return {"model": listed.get("Model name", fields.get("model name", "?")),
            "vendor": fields.get("vendor_id", "?"), "family": int(fields.get("cpu family", 0)),
            "flags": set(fields.get("flags", "").split()), "cores": len(os.sched_getaffinity(0)),
            "mhz": mhz, "clock_source": source}


CLOCK_PROBE = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec a, b; unsigned long x = 0, n = 1000000000UL;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned long i = 0; i < n; i++) __asm__ volatile("add $1, %0" : "+r"(x));
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%f\n", n / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9) / 1e9);
    return x != n;
}
"""


def measured_clock_ghz(cores):
    """The clock with every core busy, from a chain of dependent integer adds (one per cycle) run on each core
    at once; None without a C compiler."""
    import shutil
    import tempfile

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        source, binary = Path(folder) / "clock.c", Path(folder) / "clock"
        source.write_text(CLOCK_PROBE)
        subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
        runs = [subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True) for _ in range(cores)]
        return min(float(run.communicate()[0]) for run in runs)


def isa_cap():
    """The instruction set oneDNN (TensorFlow's convolutions and matrix products) is held to by
    $ONEDNN_MAX_CPU_ISA, lower case; '' when it may use all the CPU has. `ONEDNN_MAX_CPU_ISA=AVX2` on an
    AVX-512 CPU runs the AVX2 kernels, a stand-in for an AVX2 CPU (same cores and caches, not the same
    chip)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().lower()
    return "" if cap in ("", "all", "default") else cap


def fp32_peak(cpu):
    """(GFLOP/s, how it was derived): cores x GHz x FMA units x fp32 lanes x 2 FLOP per FMA, for the
    instruction set oneDNN may use (`isa_cap`)."""
    flags, cap = cpu["flags"], isa_cap()
    if cap and not cap.startswith(("avx512", "avx10")):  # oneDNN's AVX kernels have no FMA (AVX2 brought it)
        flags = {f for f in flags if not f.startswith("avx512")}
        flags -= {"avx2", "fma"} if cap == "avx" else set() if cap.startswith("avx2") else {"avx", "avx2", "fma"}
    if "avx512f" in flags:
        lanes, width = 16, "AVX-512: 16 fp32 lanes"
        if cpu["vendor"] == "AuthenticAMD" and cpu["family"] == 25:
            lanes, width = 8, "AVX-512 on Zen 4 (family 25) runs as 2 x 256-bit: 8 fp32 lanes per FMA pipe"
        elif cpu["vendor"] == "AuthenticAMD" and cpu["family"] == 26:
            width = "AVX-512 on Zen 5 (family 26; EPYC parts have full 512-bit FMA pipes): 16 fp32 lanes"
    elif "avx2" in flags or "avx" in flags:
        lanes, width = 8, "AVX/AVX2: 8 fp32 lanes"
    else:
        lanes, width = 4, "SSE: 4 fp32 lanes"
    fma = "fma" in flags
    per_cycle = (FMA_UNITS if fma else 1) * lanes * 2
    ghz = cpu["mhz"] / 1000
    if cpu.get("measured_ghz"):
        ghz = cpu["measured_ghz"]
        cpu["clock_source"] = (f"measured: dependent adds on all {cpu['cores']} cores at once; the OS reports "
                               f"{cpu['mhz'] / 1000:.3f} GHz from {cpu['clock_source']}")
    pipes = f"{FMA_UNITS} FMA units x 2 FLOP" if fma else "no FMA: 1 multiply + 1 add pipe"
    derivation = (f"{cpu['cores']} cores x {ghz:.3f} GHz ({cpu['clock_source']}) x {pipes} x {lanes} lanes "
                  f"= {per_cycle} FLOP/cycle/core [{width}"
                  f"{f'; oneDNN held to {cap.upper()} by $ONEDNN_MAX_CPU_ISA' if cap else ''}]")
    return cpu["cores"] * ghz * per_cycle, derivation


def multiply_adds(model):
    """Per-layer multiply-adds of one image's forward pass: [(layer name, count)], nested models included."""
    import keras
    from keras import layers

    counts = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            counts += multiply_adds(layer)
            continue
        out = layer.output.shape[1:]
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            counts.append((layer.name, int(np.prod(out)) * kh * kw))
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            channels_in = layer.input.shape[-1] // layer.groups
            counts.append((layer.name, int(np.prod(out)) * kh * kw * channels_in))
        elif isinstance(layer, layers.Dense):
            counts.append((layer.name, int(np.prod(out)) * layer.input.shape[-1]))
    return counts


def seconds_per_call(fn, calls=30, repeats=3):
    """Median over `repeats` of the mean seconds per call of `fn` (returning tensors), after 3 warm-up calls."""
    from keras import tree

    for _ in range(3):
        np.asarray(tree.flatten(fn())[0])
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        for _ in range(calls):
            out = fn()
        np.asarray(tree.flatten(out)[0])
        times.append((time.perf_counter() - began) / calls)
    return float(np.median(times))


def step_profile(trainer, epochs=10):
    """Seconds per training step of `trainer`'s model, stage by stage (TensorFlow backend).

    Variants are timed one after another on one fixed batch: the tower forward (training mode), + backward
    of a trivial loss (the mean embedding), + the real loss, + the optimizer, + augmentation (a hand-written
    full step), Keras' compiled train function on that batch held in memory, and `fit` fed as `siamese train`
    feeds it (`peers.timed_fit`). Each stage's cost is the difference from the variant before it.
    """
    import tensorflow as tf
    from keras import ops

    objective, batches = trainer.objective, trainer.batches
    model, tower, loss = objective.model, objective.tower, objective.loss
    augment = next((layer for layer in model.layers if layer.name == "augmentation"), None)
    optimizer = model.optimizer
    images, labels = batches[0]
    fit = len(labels) / peers.timed_fit(model, batches, len(labels), steps=epochs * len(batches))

    in_memory = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    compiled = seconds_per_call(lambda: model.train_function(in_memory)["loss"])
    feeding = seconds_per_call(lambda: tf.constant(batches[np.random.randint(len(batches))][0]))

    x, y, weights = tf.constant(images, "float32"), tf.constant(labels), tower.trainable_variables

    def variant(augmented, real_loss, apply):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                embeddings = tower(augment(x, training=True) if augmented else x, training=True)
                value = loss(y, embeddings) if real_loss else ops.mean(embeddings)
            gradients = tape.gradient(value, weights)
            if apply:
                optimizer.apply(gradients, weights)
            return value, gradients  # returned, so that tf.function cannot prune them

        return seconds_per_call(step)

    forward = seconds_per_call(tf.function(lambda: tower(x, training=True)))
    backward = variant(False, False, False)
    with_loss = variant(False, True, False)
    with_optimizer = variant(False, True, True)
    full = variant(augment is not None, True, True)
    return {
        "forward (tower, training mode)": forward,
        "backward (gradients of a trivial loss)": backward - forward,
        "loss over the similarity matrix (forward and backward)": with_loss - backward,
        "optimizer (Adam update)": with_optimizer - with_loss,
        "augmentation (Random* layers)": full - with_optimizer,
        "Keras compiled step beyond the hand-written one": compiled - full,
        "fit beyond the compiled step: data feeding and Python/Keras per step": fit - compiled,
        "  of which PyDataset __getitem__ + host-to-tensor copy (measured alone)": feeding,
        "whole step in fit": fit,
    }


def layer_profile(tower, batch):
    """Per layer of `tower`: ms of its forward (training mode) and of its backward (gradients with respect to its
    input and weights, minus the forward), each layer timed alone on random inputs of its shape."""
    import inspect

    import keras
    import tensorflow as tf

    rows = []
    for layer in tower.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        x = tf.random.uniform((batch, *layer.input.shape[1:]))
        kwargs = {"training": True} if "training" in inspect.signature(layer.call).parameters else {}

        def backward(layer=layer, x=x, kwargs=kwargs):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(layer(x, **kwargs))
            return tape.gradient(y, [x, *layer.trainable_variables])

        forward = seconds_per_call(tf.function(lambda layer=layer, x=x, kwargs=kwargs: layer(x, **kwargs)))
        rows.append((layer.name, forward, seconds_per_call(tf.function(backward)) - forward))
    return rows


def cli_worker(output):
    """Run `siamese train --data mnist-sample` in this process, timing its stages and every training step;
    prints one JSON line."""
    from keras_siamese.cli import console as siamese
    from keras_siamese.cli import import_backend_quietly

    import_backend_quietly()  # as the console script imports Keras
    import keras

    from keras_siamese.training import trainer as module

    imported = time.time()
    stages, steps, starts = {}, [], []

    class Steps(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                starts.append(time.perf_counter() - self.began)
            self.began = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            steps.append(time.perf_counter() - self.began)

    def timed(name, original):
        def stage(self, *args, **kwargs):
            if name == "fit":
                args = ([*(args[0] if args else kwargs.pop("callbacks", ())), Steps()], *args[1:])
            began = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - began

        return stage

    for name in ("prepare", "build", "fit", "finish", "write"):
        setattr(module.Trainer, name, timed(name, getattr(module.Trainer, name)))
    try:
        siamese(["train", "--data", "mnist-sample", "--output", str(output), "--quiet"])
    except SystemExit as stop:
        if stop.code:
            raise
    print(json.dumps({"imported": imported, "stages": stages, "steps": steps, "epoch_starts": starts}))


def cli_share(python):
    """Where `siamese train --data mnist-sample`'s wall time goes: start-up, each stage, the training steps."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    output = Path("bench-out") / "throughput-train"
    began = time.time()
    lines = subprocess.run([python, __file__, "--worker", "cli", "--output", str(output)], env=env, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    wall = time.time() - began
    run = json.loads(lines[-1])
    steps = np.array(run["steps"])
    steady = float(np.median(steps))
    slow = steps[steps > 3 * steady]
    tracing = float(slow.sum() - steady * len(slow))  # the first step traces the graph: start-up, not training
    training = float(steps.sum()) - tracing
    starts = float(sum(run["epoch_starts"]))
    parts = {
        "start-up (interpreter, imports, argument parsing)": run["imported"] - began,
        "prepare (seed, load and split the data)": run["stages"]["prepare"],
        "build (tower, objective, batches, compile)": run["stages"]["build"],
        "tracing (steps over 3x the median, beyond the median)": tracing,
        "epoch starts (to the first step: a new input iterator, the old one's tf.data threads joined)": starts,
        "rest of fit outside steps (per-epoch validation, checkpoint, early stopping)":
            run["stages"]["fit"] - float(steps.sum()) - starts,
        "finish (batch-norm refresh, calibration)": run["stages"]["finish"],
        "write (model, plot, history, config)": run["stages"]["write"],
    }
    parts["other (exit, unaccounted)"] = wall - training - sum(parts.values())
    return {"wall_s": wall, "steps": len(steps), "median_step_s": steady, "training_steps_s": training,
            "parts": parts, "non_training_share": 1 - training / wall}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(peers.SOURCES), default="mnist5k")
    parser.add_argument("--anchors", type=Path, default=Path(os.environ.get("ANCHORS", peers.DEFAULT_ANCHORS)))
    parser.add_argument("--steps", type=int, default=600, help="training steps timed per recipe")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: speed, profile, cli")
    parser.add_argument("--json", type=Path, help="also write all figures here")
    parser.add_argument("--worker", choices=["cli"], help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "cli":
        return cli_worker(args.output)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    skip = set(args.skip.split(","))
    cpu = cpu_info()
    cpu["measured_ghz"] = measured_clock_ghz(cpu["cores"])
    peak, derivation = fp32_peak(cpu)
    native_bf16 = sorted(cpu["flags"] & {"avx512_bf16", "amx_bf16"})
    print(f"CPU: {cpu['model']} (vendor {cpu['vendor']}, family {cpu['family']}), {cpu['cores']} cores; "
          f"SIMD flags: {' '.join(sorted(f for f in cpu['flags'] if f.startswith(('avx', 'fma', 'amx'))))}")
    print(f"fp32 peak: {peak:.1f} GFLOP/s = {derivation}")
    print(f"native bf16: {', '.join(native_bf16) or 'none'}")
    figures = {"cpu": {**cpu, "flags": sorted(cpu["flags"])}, "peak_gflops": peak, "peak_derivation": derivation}

    sys.path.insert(0, str(args.anchors.parent))
    import recipes

    (x, y), _ = recipes.load(args.data)
    trainers = {name: peers.recipe_trainer(recipe, x[..., None], y) for name, recipe in
                (("seed recipe", "seed"), ("ours", "default"))}
    flops = {}
    print("\nforward multiply-adds per image, from the layer shapes:")
    for name, trainer in trainers.items():
        counts = multiply_adds(trainer.objective.tower)
        total = sum(c for _, c in counts)
        flops[name] = 2 * total
        layers = ", ".join(f"{layer} {c / 1e6:.2f} M" for layer, c in counts)
        print(f"  {name} tower: {total / 1e6:.2f} M ({layers}); {2 * total / 1e6:.1f} MFLOP forward, "
              f"{6 * total / 1e6:.1f} MFLOP trained")
    figures["forward_flops"] = flops

    if "speed" not in skip:
        speeds = peers.throughput(args.data, args.anchors, steps=args.steps)
        figures["throughput"] = speeds
        rows = [("training", "seed recipe", speeds["seed recipe train images/s (2 per pair)"], 3),
                ("training", "ours", speeds["ours train images/s"], 3),
                ("embedding", "seed recipe", speeds["seed tower embedding images/s"], 1),
                ("embedding", "ours", speeds["our tower embedding images/s"], 1)]
        print("\n| what | tower | images/s | GFLOP/s | share of fp32 peak |\n|---|---|---|---|---|")
        for what, name, speed, factor in rows:
            achieved = speed * factor * flops[name] / 1e9
            print(f"| {what} | {name} | {speed:,.0f} | {achieved:.1f} | {achieved / peak:.1%} |")
        ratio = speeds["ours train images/s"] / speeds["seed recipe train images/s (2 per pair)"]
        print(f"training images/s, ours / seed recipe (same run): {ratio:.2f}x")

    if "profile" not in skip:
        profile = step_profile(trainers["ours"])
        figures["step_profile_s"] = profile
        whole = profile["whole step in fit"]
        print(f"\none training step of the default recipe ({trainers['ours'].objective.model.input_shape}, batch of "
              f"{len(trainers['ours'].batches[0][0])}), ms and share of the step in fit:")
        for stage, seconds in profile.items():
            print(f"  {stage}: {1e3 * seconds:.2f} ms ({seconds / whole:.0%})")
        layers = layer_profile(trainers["ours"].objective.tower, len(trainers["ours"].batches[0][0]))
        figures["layer_profile_ms"] = {name: [1e3 * f, 1e3 * b] for name, f, b in layers}
        print("per layer, timed alone (ms forward / backward):")
        for name, forward, backward in layers:
            print(f"  {name}: {1e3 * forward:.2f} / {1e3 * backward:.2f}")

    if "cli" not in skip:
        share = cli_share(sys.executable)
        figures["siamese_train"] = share
        print(f"\n`siamese train --data mnist-sample`: {share['wall_s']:.1f} s wall, {share['steps']} steps of "
              f"{1e3 * share['median_step_s']:.1f} ms (median), training steps {share['training_steps_s']:.1f} s")
        for part, seconds in share["parts"].items():
            print(f"  {part}: {seconds:.2f} s ({seconds / share['wall_s']:.1%})")
        print(f"everything but the training steps: {share['non_training_share']:.1%} of the wall time")
    if args.json:
        from keras_siamese.atomic import atomic_path

        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(figures, indent=2, default=float))


if __name__ == "__main__":
    main()
