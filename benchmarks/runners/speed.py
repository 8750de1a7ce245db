"""python -m benchmarks.runners.speed: training throughput of both frameworks, side by side in one run.

Each configuration runs in its own subprocess (no thread pool of one framework spinning while the
other is timed) and trains through the real trainers (torch_ref's engines, flax_impl.trainer.FlaxTrainer)
on random CIFAR-shaped data. Reported: median and min-max img/s over --repeats timed epochs after one
warm-up epoch, whose extra time is the compile (or CUDA-graph capture) time, and over --rounds
processes per configuration, run in interleaved rounds. Evaluation img/s: the validation pass as the
training loop runs it (10,000 images). Each Flax row is also compared with the fastest PyTorch
variant of the same model, batch size and number of lanes. Variants that need CUDA are recorded as
skipped, with the reason, on a machine without it.
Writes <out>/speed.json and <out>/speed.md.
"""
import argparse
import dataclasses
import importlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from typing import NamedTuple

import numpy as np

from benchmarks.report.speed_table import table
from benchmarks.runners.args import int_list, name_list, out_folder
from experiment.atomic import atomic_write_text
from experiment.cli import OneLineParser, positive_float, positive_int
from experiment.errors import exit_on_user_error
from experiment.frameworks import FRAMEWORKS
from experiment.lanes import plan_lanes
from experiment.provenance import cpu_name
from experiment.split import EpochBatches, Splits
from experiment.variants import MODELS

# variant -> (framework, extra trainer arguments); "seeds": lanes trained at once
VARIANTS = {
    "torch-eager": ("torch", {"engine": "tutorial"}),
    "torch-compile": ("torch", {"compile": True}),
    "torch-fast": ("torch", {"engine": "fast"}),
    "torch-vmap8": ("torch", {"engine": "vmap", "seeds": 8}),
    "torch-cudagraph": ("torch", {"engine": "cudagraph"}),
    "torch-cudagraph-vmap8": ("torch", {"engine": "vmap-cudagraph", "seeds": 8}),
    "torch-compile-ro": ("torch", {"engine": "fast", "compile": True, "compile_mode": "reduce-overhead"}),
    "flax-scan-matmul": ("flax", {"fuse": "scan", "impl": "matmul"}),
    "flax-step-matmul": ("flax", {"fuse": "step", "impl": "matmul"}),
    "flax-scan-xla": ("flax", {"fuse": "scan", "impl": "xla"}),
    "flax-scan-matmul-vmap8": ("flax", {"fuse": "scan", "impl": "matmul", "seeds": 8}),
    "flax-scan-xla-vmap8": ("flax", {"fuse": "scan", "impl": "xla", "seeds": 8}),
}

# XLA's command buffers (CUDA graphs of its own) for every kind of command, the scan's WHILE loop
# included; names as XLA's DebugOptions spell them (an unknown name stops XLA at start-up).
COMMAND_BUFFERS = ("--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUDNN,CUSTOM_CALL,CONDITIONAL,WHILE "
                   "--xla_gpu_graph_min_graph_size=1")
# Flax option suffixes, in this order before -tf32: trainer settings (flax_impl.train's flags), or XLA flags.
# Each computes the default's numbers (tests/test_flax_variants.py; -unroll up to float32 rounding,
# -nochunk draws a Dropout lane's masks per batch rather than per 64-image chunk).
FLAX_OPTIONS = {
    r"unroll(\d+)": lambda k: {"scan_unroll": int(k)},
    r"cmdbuf": lambda: {"xla_flags": COMMAND_BUFFERS},
    r"donate": lambda: {"donate": True},
    r"nochunk": lambda: {"micro_batch": 0},
}
GRAMMAR = "+ vmapN; for flax -unrollK, -cmdbuf, -donate, -nochunk; -tf32"


def variant_spec(variant):
    """(framework, trainer settings) of a variant. Beyond VARIANTS' names: '...vmapN' for N lanes
    (e.g. flax-scan-matmul-vmap64, torch-vmap16, torch-cudagraph-vmap16), Flax options
    (-unrollK, -cmdbuf, -donate, -nochunk; FLAX_OPTIONS) and a '-tf32' suffix for --precision tf32.
    'xla_flags' among the settings is the XLA_FLAGS its process runs with."""
    name, precision = (variant[: -len("-tf32")], "tf32") if variant.endswith("-tf32") else (variant, "highest")
    options = {}
    for pattern, settings in reversed(FLAX_OPTIONS.items()):
        match = re.fullmatch(rf"(.*)-{pattern}", name)
        if match and name.startswith("flax-"):
            name, options = match.group(1), {**settings(*match.groups()[1:]), **options}
    match = re.fullmatch(r"(.*vmap)(\d+)", name)
    base = match.group(1) + "8" if match else name
    if base not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)} ({GRAMMAR})")
    framework, extra = VARIANTS[base]
    extra = {**extra, **options, "precision": precision, **({"seeds": int(match.group(2))} if match else {})}
    return framework, extra


# Variants that only make sense on CUDA, and why.
CUDA_ONLY = {"torch-cudagraph": "CUDA graphs need a CUDA device",
             "torch-compile-ro": "reduce-overhead replays CUDA graphs; needs a CUDA device"}

EVAL_IMAGES = 10000  # the validation set's size


def random_splits(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(max(n, EVAL_IMAGES), 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=len(x))
    return Splits(x[:n], y[:n], x[:EVAL_IMAGES], y[:EVAL_IMAGES], x[:10], y[:10])


def measure_one(variant, model, batch, images, repeats, device):
    """Run in a subprocess: times warm-up + `repeats` epochs of `images` random images."""
    framework, extra = variant_spec(variant)
    seeds = list(range(extra.pop("seeds", 1)))
    extra.pop("xla_flags", None)  # set for this process by run_subprocess
    images //= len(seeds)  # same model-images per timed epoch for every variant
    module = importlib.import_module(FRAMEWORKS[framework].train)
    config = module.default(model=model, seeds=seeds, batch_size=batch, device=device, no_progress=True, **extra)
    row = {"variant": variant, "framework": framework, "model": model, "batch": batch, "seeds": len(seeds),
           "engine": getattr(config.options, "engine", None), "precision": config.precision,
           "settings": dataclasses.asdict(config.options), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    reason = next((why for v, why in CUDA_ONLY.items() if variant.startswith(v)), None)
    if reason and not cuda_device(device):
        return {**row, "skipped": reason}
    splits = random_splits(images)
    trainer = module.BACKEND.make_trainer(config, plan_lanes(config), splits)
    times = []
    for epoch in range(repeats + 1):
        orders = np.stack([np.random.default_rng([s, epoch]).permutation(images) for s in seeds])
        t0 = time.perf_counter()
        trainer.train_epoch(epoch, EpochBatches(orders, batch))
        times.append(time.perf_counter() - t0)
    steady = float(np.median(times[1:]))
    rates = [images * len(seeds) / t for t in times[1:]]  # model-images per second
    eval_times = []
    for _ in range(repeats + 1):  # validation as the training loop runs it, first call = warm-up
        t0 = time.perf_counter()
        trainer.validate()
        eval_times.append(time.perf_counter() - t0)
    eval_rate = EVAL_IMAGES * len(seeds) / float(np.median(eval_times[1:]))
    return {**row, "images": images,
            "img_per_s": float(np.median(rates)), "img_per_s_min": min(rates), "img_per_s_max": max(rates),
            "compile_s": max(0.0, times[0] - steady), "eval_img_per_s": eval_rate,
            "device": trainer.device, "versions": trainer.versions}


def cuda_device(device):
    """Whether PyTorch's --device resolves to a CUDA device here."""
    import torch
    return device != "cpu" and torch.cuda.is_available()


class Measure(NamedTuple):
    """How each configuration is measured: images per timed epoch, timed epochs (after one warm-up),
    on which device, and the seconds after which its process is given up (None: never)."""
    images: int
    repeats: int
    device: str
    timeout: float | None = None


def run_subprocess(variant, model, batch, how):
    """One configuration in a fresh process, measured as `how` says; a failure or a time-out is a
    row saying so."""
    images, repeats, device, timeout = how
    cmd = [sys.executable, "-m", "benchmarks.runners.speed", "--one", variant, model, str(batch),
           "--images", str(images), "--repeats", str(repeats), "--device", device]
    framework, extra = variant_spec(variant)
    row = {"variant": variant, "framework": framework, "model": model, "batch": batch,
           "seeds": extra.get("seeds", 1), "precision": extra["precision"]}
    env = dict(os.environ)
    if extra.get("xla_flags"):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {extra['xla_flags']}".strip()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**row, "skipped": f"did not finish within {timeout} s"}
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1][:200] if r.stderr.strip() else f"exit {r.returncode}"
        return {**row, "skipped": f"failed: {last}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def combine(rows):
    """One configuration measured in several processes: the median of the processes' medians
    (one process can land on a slow or fast spell of a shared machine), min-max over all."""
    measured = [r for r in rows if not r.get("skipped")]
    if not measured:
        return dict(rows[0])
    rows = measured
    out = dict(rows[0])
    for k in ("img_per_s", "eval_img_per_s", "compile_s"):
        out[k] = float(np.median([r[k] for r in rows]))
    out["img_per_s_min"] = min(r["img_per_s_min"] for r in rows)
    out["img_per_s_max"] = max(r["img_per_s_max"] for r in rows)
    out["per_process_img_per_s"] = [r["img_per_s"] for r in rows]
    return out


def machine_info():
    info = {"cpu": cpu_name(), "cores": os.cpu_count()}
    try:
        import jax
        info["jax_devices"] = [str(d.device_kind) for d in jax.devices()]
    except Exception:  # jax missing or no backend: report what we have
        pass
    return info


@exit_on_user_error("benchmarks.runners.speed")
def main(argv=None):
    p = OneLineParser(prog="benchmarks.runners.speed", description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--models", type=name_list(MODELS), default=list(MODELS))
    p.add_argument("--batches", type=int_list(), default=[64, 128, 256])
    p.add_argument("--images", type=positive_int, default=10240, help="images per timed epoch")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed epochs per process")
    p.add_argument("--rounds", type=positive_int, default=3, help="processes per configuration, interleaved")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="default benchmarks/results/<cpu|gpu>-speed")
    p.add_argument("--timeout", type=positive_float, default=None,
                   help="seconds a configuration may take before it is skipped")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows already in OUT/speed.json (a configuration measured again replaces its row), "
                        "so several runs build one table")
    p.add_argument("--one", nargs=3, metavar=("VARIANT", "MODEL", "BATCH"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        v, m, b = a.one
        print(json.dumps(measure_one(v, m, int(b), a.images, a.repeats, a.device)))
        return
    configs = list(itertools.product(a.models, a.batches, a.variants.split(",")))
    for variant in a.variants.split(","):
        try:
            variant_spec(variant)  # an unknown name fails now, not an hour in
        except ValueError as e:
            p.error(f"--variants: {e}")
    out_folder(p, a.out or "benchmarks")
    runs = {c: [] for c in configs}
    out = a.out or os.path.join("benchmarks", "results", f"{a.device}-speed")
    os.makedirs(out, exist_ok=True)
    command = "python -m benchmarks.runners.speed " + " ".join(argv if argv is not None else sys.argv[1:])
    kept = previous_rows(out) if a.merge else []
    for r in range(a.rounds):  # whole rounds, so a drift of the machine hits every variant alike
        for model, batch, variant in configs:
            row = run_subprocess(variant, model, batch, Measure(a.images, a.repeats, a.device, a.timeout))
            runs[(model, batch, variant)].append(row)
            if row.get("skipped"):
                print(f"round {r + 1}/{a.rounds} {model:8s} batch {batch:4d} {variant:22s} skipped: {row['skipped']}")
            else:
                print(f"round {r + 1}/{a.rounds} {model:8s} batch {batch:4d} {variant:22s} {row['img_per_s']:9,.0f} "
                      f"img/s train, {row['eval_img_per_s']:9,.0f} eval (compile {row['compile_s']:.1f}s)", flush=True)
            write(out, command, merged(kept, [combine(rs) for rs in runs.values() if rs]))  # a cut run keeps what it measured
    print(table([combine(rs) for rs in runs.values()]))


def row_key(row):
    return row["variant"], row["model"], row["batch"]


def previous_rows(out):
    """The rows of OUT/speed.json, with the command that measured each (none if there is no file)."""
    try:
        with open(os.path.join(out, "speed.json")) as f:
            old = json.load(f)
    except FileNotFoundError:
        return []
    except ValueError as e:
        raise SystemExit(f"benchmarks.runners.speed: error: --merge: {out}/speed.json is not readable JSON ({e})") from None
    return [{**r, "command": r.get("command", old.get("command"))} for r in old.get("rows", [])]


def merged(kept, new):
    """Earlier rows, each replaced by this run's row of the same configuration, then this run's others."""
    fresh = {row_key(r): r for r in new}
    return [fresh.pop(row_key(r), r) for r in kept] + list(fresh.values())


def write(out, command, rows):
    machine, today = machine_info(), time.strftime("%Y-%m-%d")
    # Which run measured each row, where and when (a merged table can hold rows of several machines).
    rows = [{"command": command, "machine": machine, "date": today, **r} for r in rows]
    result = {"command": command, "machine": machine, "rows": rows}
    atomic_write_text(os.path.join(out, "speed.json"), json.dumps(result, indent=1) + "\n")
    atomic_write_text(os.path.join(out, "speed.md"), table(rows) + "\n")


if __name__ == "__main__":
    main()
