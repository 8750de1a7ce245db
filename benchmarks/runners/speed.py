"""python -m benchmarks.runners.speed: training throughput of both frameworks, side by side in one run.

Configurations run in one process per framework and XLA-flag set, one after the other (start-up paid once;
no thread pool of one framework spinning while the other is timed; XLA reads its flags when a process
starts), and train through the real trainers (torch_ref's engines, flax_impl.trainer.FlaxTrainer) on random
CIFAR-shaped data. A row: one warm-up epoch, whose extra time is the compile (or CUDA-graph capture) time,
then timed epochs, at least --repeats and, with --window S, until S seconds of them (a window sized by the
row's own rate); reported are their median and min-max img/s, over --rounds processes per configuration run
in interleaved rounds. Evaluation img/s: the validation pass as the training loop runs it (10,000 images),
timed alike over a quarter of the window. Each Flax row is also compared with the fastest PyTorch variant of
the same model, batch size and number of lanes. Variants that need CUDA are recorded as skipped, with the
reason, on a machine without it.
Writes <out>/speed.json and <out>/speed.md.
"""
import argparse
import dataclasses
import gc
import importlib
import itertools
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import NamedTuple

import numpy as np

from benchmarks.report.speed_table import table
from benchmarks.runners.args import int_list, name_list, out_folder
from experiment.atomic import atomic_write_text
from experiment.cli import OneLineParser, positive_float, positive_int
from experiment.errors import UserError, exit_on_user_error
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
EVAL_SHARE = 0.25  # evaluation is timed over this share of --window
MAX_TIMED = 200  # timed epochs (or evaluations) of one row, at most
PROCESS_START = time.monotonic()  # a configuration process's start, after this module's imports


def random_splits(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(max(n, EVAL_IMAGES), 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=len(x))
    return Splits(x[:n], y[:n], x[:EVAL_IMAGES], y[:EVAL_IMAGES], x[:10], y[:10])


def timed(run, at_least, window_s, most=MAX_TIMED):
    """Seconds of calls of run(), after one warm-up call (returned apart): at least `at_least` timed calls,
    and more until they sum to `window_s` (at most `most`)."""
    t0 = time.perf_counter()
    run()
    warm = time.perf_counter() - t0
    times = []
    while len(times) < at_least or (sum(times) < window_s and len(times) < most):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return warm, times


def measure_one(variant, model, batch, how):
    """Run in the configuration's process: times a warm-up + timed epochs of `how.images` random images."""
    framework, extra = variant_spec(variant)
    seeds = list(range(extra.pop("seeds", 1)))
    extra.pop("xla_flags", None)  # set for this process by run_group
    images = max(how.images // len(seeds), batch)  # same model-images per timed epoch for every variant
    module = importlib.import_module(FRAMEWORKS[framework].train)
    config = module.default(model=model, seeds=seeds, batch_size=batch, device=how.device, no_progress=True, **extra)
    row = {"variant": variant, "framework": framework, "model": model, "batch": batch, "seeds": len(seeds),
           "engine": getattr(config.options, "engine", None), "precision": config.precision,
           "settings": dataclasses.asdict(config.options), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    reason = next((why for v, why in CUDA_ONLY.items() if variant.startswith(v)), None)
    if reason and not cuda_device(how.device):
        return {**row, "skipped": reason}
    t_row = time.perf_counter()
    splits = random_splits(images)
    trainer = module.BACKEND.make_trainer(config, plan_lanes(config), splits)
    epoch = iter(range(10**9))

    def train():
        e = next(epoch)
        orders = np.stack([np.random.default_rng([s, e]).permutation(images) for s in seeds])
        trainer.train_epoch(e, EpochBatches(orders, batch))
    warm, times = timed(train, how.repeats, how.window)
    steady = float(np.median(times))
    rates = [images * len(seeds) / t for t in times]  # model-images per second
    _, eval_times = timed(trainer.validate, how.repeats, how.window * EVAL_SHARE)  # first call = warm-up
    eval_rate = EVAL_IMAGES * len(seeds) / float(np.median(eval_times))
    compile_stats = trainer.compile_stats()  # Flax: this process's compiles and cache loads; PyTorch: None
    where = {"device": trainer.device, "versions": trainer.versions}
    del trainer
    gc.collect()  # the next row of this process starts with the device's memory free
    return {**row, "images": images, "timed_epochs": len(times),
            "img_per_s": float(np.median(rates)), "img_per_s_min": min(rates), "img_per_s_max": max(rates),
            "compile_s": max(0.0, warm - steady), "eval_img_per_s": eval_rate,
            "row_s": round(time.perf_counter() - t_row, 3), **where,
            **({"compile_cache": compile_stats} if compile_stats else {})}


def cuda_device(device):
    """Whether PyTorch's --device resolves to a CUDA device here."""
    import torch
    return device != "cpu" and torch.cuda.is_available()


class Measure(NamedTuple):
    """How each configuration is measured: images per timed epoch, the fewest timed epochs (after one
    warm-up), on which device, the seconds after which a configuration is given up (None: never) and the
    seconds of timed epochs to fill (0: just the fewest)."""
    images: int
    repeats: int
    device: str
    timeout: float | None = None
    window: float = 0.0


def process_key(variant):
    """Configurations that may share a process: one framework, one set of XLA flags (read at start-up)."""
    framework, extra = variant_spec(variant)
    return framework, extra.get("xla_flags", "")


def skipped_row(config, why):
    variant, model, batch = config
    framework, extra = variant_spec(variant)
    return {"variant": variant, "framework": framework, "model": model, "batch": batch,
            "seeds": extra.get("seeds", 1), "precision": extra["precision"], "skipped": why}


def run_group(configs, how):
    """Rows of configurations (variant, model, batch) of one process_key, measured one after the other in
    one fresh process, yielded as each finishes; those it did not reach (a time-out, a failure) as rows
    saying why."""
    _, xla_flags = process_key(configs[0][0])
    cmd = [sys.executable, "-m", "benchmarks.runners.speed", "--group", json.dumps(configs), "--images",
           str(how.images), "--repeats", str(how.repeats), "--device", how.device, "--window", str(how.window)]
    env = dict(os.environ)
    if xla_flags:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {xla_flags}".strip()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        lines = queue.Queue()
        threading.Thread(target=lambda: [*map(lines.put, proc.stdout), lines.put(None)], daemon=True).start()
        done, why = 0, None
        while done < len(configs):
            try:
                line = lines.get(timeout=how.timeout)
            except queue.Empty:
                proc.kill()
                why = f"did not finish within {how.timeout} s"
                break
            if line is None:
                break
            try:
                row = json.loads(line)
            except ValueError:  # a library's own output on stdout
                continue
            done += 1
            yield row
        proc.wait()
        if why is None and done < len(configs):
            err.seek(0)
            last = [x for x in err.read().strip().splitlines() if x.strip()]
            why = f"failed: {last[-1][:200]}" if last else f"failed: exit {proc.returncode}"
    for i, config in enumerate(configs[done:]):
        yield skipped_row(config, why if i == 0 else f"not measured: its process stopped at {configs[done][0]}")


def run_subprocess(variant, model, batch, how):
    """One configuration's row, measured in a fresh process of its own."""
    return next(run_group([(variant, model, batch)], how))


def measure_group(configs, how):
    """In a configuration process: the framework's start-up once, then each configuration's row, printed
    as one JSON line as soon as it is measured."""
    framework, _ = process_key(configs[0][0])
    importlib.import_module(FRAMEWORKS[framework].train)
    startup = round(time.monotonic() - PROCESS_START, 3)  # interpreter, imports: paid once per process
    for i, (variant, model, batch) in enumerate(configs):
        row = measure_one(variant, model, int(batch), how)
        print(json.dumps({**row, "process_startup_s": startup, "process_row": i + 1}), flush=True)


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
    p.add_argument("--variants", default=",".join(VARIANTS), help="VARIANT (at every --batches) or VARIANT@BATCH")
    p.add_argument("--models", type=name_list(MODELS), default=list(MODELS))
    p.add_argument("--batches", type=int_list(), default=[64, 128, 256])
    p.add_argument("--images", type=positive_int, default=10240, help="model-images per timed epoch")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed epochs per row, at least")
    p.add_argument("--window", type=non_negative_float, default=0.0,
                   help="seconds of timed epochs per row: more epochs than --repeats until they fill it")
    p.add_argument("--rounds", type=positive_int, default=3, help="processes per configuration, interleaved")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="default benchmarks/results/<cpu|gpu>-speed")
    p.add_argument("--timeout", type=positive_float, default=None,
                   help="seconds a configuration may take before it (and the rest of its process) is skipped")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows already in OUT/speed.json (a configuration measured again replaces its row), "
                        "so several runs build one table")
    p.add_argument("--one", nargs=3, metavar=("VARIANT", "MODEL", "BATCH"), help=argparse.SUPPRESS)
    p.add_argument("--group", type=json.loads, help=argparse.SUPPRESS)  # [[variant, model, batch], ...]
    a = p.parse_args(argv)
    how = Measure(a.images, a.repeats, a.device, a.timeout, a.window)
    if a.one or a.group:
        measure_group([a.one] if a.one else a.group, how)
        return
    configs = []
    for item in a.variants.split(","):
        variant, at, batch = item.partition("@")  # VARIANT@BATCH: at that batch size only
        try:
            variant_spec(variant)  # an unknown name fails now, not an hour in
            batches = [positive_int(batch)] if at else a.batches
        except (ValueError, argparse.ArgumentTypeError) as e:
            p.error(f"--variants: {item!r}: {e}")
        configs += [(m, b, variant) for m, b in itertools.product(a.models, batches)]
    out_folder(p, a.out or "benchmarks")
    out = a.out or os.path.join("benchmarks", "results", f"{a.device}-speed")
    kept = previous_rows(out) if a.merge else []  # a damaged table is refused before anything is measured
    runs = {c: [] for c in configs}
    os.makedirs(out, exist_ok=True)
    command = "python -m benchmarks.runners.speed " + " ".join(argv if argv is not None else sys.argv[1:])
    groups = {}
    for model, batch, variant in configs:
        groups.setdefault(process_key(variant), []).append((variant, model, batch))
    for r in range(a.rounds):  # whole rounds, so a drift of the machine hits every variant alike
        for group in groups.values():
            for row in run_group(group, how):
                runs[(row["model"], row["batch"], row["variant"])].append(row)
                say(r, a.rounds, row)
                write(out, command, merged(kept, [combine(rs) for rs in runs.values() if rs]))  # a cut run keeps it
    print(table([combine(rs) for rs in runs.values()]))


def say(r, rounds, row):
    head = f"round {r + 1}/{rounds} {row['model']:8s} batch {row['batch']:4d} {row['variant']:22s}"
    if row.get("skipped"):
        print(f"{head} skipped: {row['skipped']}", flush=True)
    else:
        print(f"{head} {row['img_per_s']:9,.0f} img/s train, {row['eval_img_per_s']:9,.0f} eval "
              f"(compile {row['compile_s']:.1f}s, {row['timed_epochs']} timed epochs)", flush=True)


def non_negative_float(text):
    v = float(text)
    if not 0 <= v < float("inf"):
        raise ValueError(text)
    return v


def row_key(row):
    return row["variant"], row["model"], row["batch"]


ROW_FIELDS = {"variant": str, "model": str, "batch": int}  # what a kept row is matched by


def previous_rows(out):
    """The rows of OUT/speed.json (none if there is no file), each with the command, machine and date that
    measured it (a row that does not say: the file's command and machine, date not recorded); a table that
    is not one this runner writes is a UserError, so nothing is measured only to be lost."""
    path = os.path.join(out, "speed.json")
    try:
        with open(path) as f:
            old = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands deep
        raise UserError(f"--merge: {path} is not readable JSON ({type(e).__name__}); move it away or drop --merge")
    rows = old.get("rows") if isinstance(old, dict) else None
    why = "it holds no list of rows" if not isinstance(rows, list) else next(
        (f"row {i + 1} {w}" for i, r in enumerate(rows) for w in [bad_row(r)] if w), None)
    if why:
        raise UserError(f"--merge: {path} is not a speed table ({why}); move it away or drop --merge")
    return [{**r, "command": r.get("command", old.get("command")), "machine": r.get("machine", old.get(
        "machine", "not recorded")), "date": r.get("date", "not recorded")} for r in rows]


def bad_row(r):
    if not isinstance(r, dict):
        return "is not an object"
    for k, kind in ROW_FIELDS.items():
        if not isinstance(r.get(k), kind) or isinstance(r.get(k), bool):
            return f"has no {k} ({kind.__name__})"
    return None


def merged(kept, new):
    """Earlier rows, each replaced by this run's row of the same configuration, then this run's others."""
    fresh = {row_key(r): r for r in new}
    return [fresh.pop(row_key(r), r) for r in kept] + list(fresh.values())


def write(out, command, rows):
    """speed.json and speed.md; a row this run measured is stamped with this command, machine and date
    (a kept row carries its own: a merged table can hold rows of several machines)."""
    machine, today = machine_info(), time.strftime("%Y-%m-%d")
    rows = [{"command": command, "machine": machine, "date": today, **r} for r in rows]
    result = {"command": command, "machine": machine, "rows": rows}
    atomic_write_text(os.path.join(out, "speed.json"), json.dumps(result, indent=1) + "\n")
    atomic_write_text(os.path.join(out, "speed.md"), table(rows) + "\n")


if __name__ == "__main__":
    main()
