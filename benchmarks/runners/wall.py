"""python -m benchmarks.runners.wall: how much of a training command's wall time its epochs take, and how
many model-images per second the device trains as lanes are added.

Part 1 runs the main job, `flax_impl.train --model both --seeds 0..S-1`, as a user would (a fresh
process, output written as usual) for each --epochs value, --repeats times, and reports the wall
time of the whole command next to the sum of its epochs' seconds (history.json) and their ratio.
With two epoch counts it also reports the marginal wall time per epoch, (wall(E2) - wall(E1)) /
(E2 - E1): what one more epoch costs once start-up, compilation and the last writes are paid,
against the mean epoch's seconds and against the compute of an epoch alone (the same program, nothing
written or queued). --repo LABEL=PATH runs another checkout (an earlier version, for a before/after
table) with this one's measuring code. Each checkout runs once untimed first, so the timed runs
find the caches (decoded data, compiled programs) as a user's second run does.

Part 2 (--lanes) times training epochs of one compiled program of N lanes (benchmarks.runners.speed, a
process per N) until the rate stops growing.

  python -m benchmarks.runners.wall --data synthetic:400 --seeds 8 --epochs 30,60 --out benchmarks/results/cpu-wall
  python -m benchmarks.runners.wall --data $CIFAR10 --seeds 8 --epochs 100 --device gpu --lanes 1,2,4,8,16,32,64,128 --out X
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.runners.args import data_source, int_list, last_line, out_folder
from experiment.atomic import atomic_write_text
from experiment.cli import OneLineParser, epochs_count, positive_int
from experiment.errors import exit_on_user_error
from experiment.history import load_history

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_command(repo, data, seeds, epochs, device, extra=()):
    """Wall seconds of one training command, and its history's epoch and compile seconds."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "flax_impl.train", "--model", "both", "--seeds", ",".join(map(str, range(seeds))),
               "--epochs", str(epochs), "--data", data, "--device", device, "--out", out, "--no-progress", *extra]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"flax_impl.train in {repo} failed with exit {r.returncode}: {last_line(r.stderr)}")
        histories = [load_history(os.path.join(out, m, "seed_0", "history.json")) for m in ("baseline", "dropout")]
    # Lanes of one program share each epoch's seconds; programs run one after the other add up.
    one_program = histories[0]["epochs"][0]["seconds"] == histories[1]["epochs"][0]["seconds"]
    programs = histories[: 1 if one_program else 2]
    per_epoch = [sum(e["seconds"] for e in es) for es in zip(*(h["epochs"] for h in programs))]
    return {"wall_s": wall, "epochs_s": sum(per_epoch), "mean_epoch_s": statistics.mean(per_epoch),
            "first_epoch_s": per_epoch[0], "compile": histories[0].get("compile"), "programs": 1 if one_program else 2}


def command_table(a):
    rows = []
    for repo_name, repo in (("this checkout", REPO), *(r.split("=", 1) for r in a.repo)):
        run_command(repo, a.data, a.seeds, min(a.epochs), a.device)  # warm-up: caches as a user's second run has them
        for epochs in a.epochs:
            runs = [run_command(repo, a.data, a.seeds, epochs, a.device) for _ in range(a.repeats)]
            row = {"code": repo_name, "epochs": epochs, "runs": runs,
                   **{k: statistics.median(r[k] for r in runs) for k in ("wall_s", "epochs_s", "mean_epoch_s")}}
            row["wall_over_epochs"] = row["wall_s"] / row["epochs_s"]
            rows.append(row)
            print(f"[wall] {repo_name}: {epochs} epochs, wall {row['wall_s']:.1f} s, epochs {row['epochs_s']:.1f} s "
                  f"(x{row['wall_over_epochs']:.2f})", flush=True)
        mine = [r for r in rows if r["code"] == repo_name]
        if len(mine) >= 2:
            lo, hi = mine[0], mine[-1]
            marginal = (hi["wall_s"] - lo["wall_s"]) / (hi["epochs"] - lo["epochs"])
            hi["marginal_epoch_s"], hi["marginal_over_mean_epoch"] = marginal, marginal / hi["mean_epoch_s"]
    return rows


COMPUTE = """
import json, statistics, sys, time
import numpy as np
from experiment.split import EpochBatches
from experiment.entry import load_splits
from experiment.lanes import plan_lanes
from flax_impl.train import BACKEND
data, seeds, epochs, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
config = BACKEND.default(model="both", seeds=list(range(seeds)), data=data, device=device, no_progress=True)
splits, _ = load_splits(config)
lanes = plan_lanes(config)
trainer = BACKEND.make_trainer(config, lanes, splits)
times = []
for epoch in range(1, epochs + 2):  # the first: compilation
    batches = EpochBatches.of_lanes(lanes, len(splits.train_x), epoch, config.batch_size)
    t0 = time.perf_counter()
    trainer.start_epoch(epoch, batches).metrics()
    times.append(time.perf_counter() - t0)
print(json.dumps({"compute_epoch_s": statistics.median(times[1:])}))
"""


def compute_per_epoch(a):
    """The same lanes' epoch (training and validation) with nothing written and nothing queued:
    what an epoch costs the device, against which the command's marginal epoch is judged."""
    epochs = min(a.epochs)
    r = subprocess.run([sys.executable, "-c", COMPUTE, a.data, str(a.seeds), str(epochs), a.device], cwd=REPO,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])["compute_epoch_s"]


def lanes_table(a):
    """Model-images per second of one program of N lanes, N in --lanes, until it stops growing
    (two steps in a row under 5% above the best so far)."""
    from benchmarks.runners.speed import Measure, run_subprocess
    rows, best, flat = [], 0.0, 0
    for n in a.lanes:
        variant = "flax-scan-matmul" if n == 1 else f"flax-scan-matmul-vmap{n}"
        row = run_subprocess(variant, "dropout", a.batch, Measure(a.images * n, a.speed_repeats, a.device))
        if row.get("skipped"):
            print(f"[lanes] {n} lanes: {row['skipped']}", flush=True)
            break
        rows.append(row)
        print(f"[lanes] {n:4d} lanes: {row['img_per_s']:12,.0f} model-images/s", flush=True)
        flat = flat + 1 if row["img_per_s"] < 1.05 * best else 0
        best = max(best, row["img_per_s"])
        if flat == 2:
            break
    return rows


def markdown(result):
    lines = []
    compute = result.get("compute_epoch_s")
    if result["command"]:
        lines += ["| code | epochs | wall s | sum of epochs s (history) | wall / epochs | marginal s per epoch | "
                  "marginal / mean epoch | marginal / compute epoch |", "|---|---|---|---|---|---|---|---|"]
        for r in result["command"]:
            m = (f"{r['marginal_epoch_s']:.3f} | {r['marginal_over_mean_epoch']:.2f}x | "
                 f"{r['marginal_epoch_s'] / compute:.2f}x" if "marginal_epoch_s" in r else "- | - | -")
            lines.append(f"| {r['code']} | {r['epochs']} | {r['wall_s']:.1f} | {r['epochs_s']:.1f} | "
                         f"{r['wall_over_epochs']:.2f}x | {m} |")
        lines += ["", f"Compute per epoch (this checkout's program, the same lanes, nothing written or queued; "
                      f"median): {compute:.3f} s."]
    if result["lanes"]:
        lines += ["", "| lanes | model-images/s | per lane | compile s |", "|---|---|---|---|"]
        for r in result["lanes"]:
            lines.append(f"| {r['seeds']} | {r['img_per_s']:,.0f} | {r['img_per_s'] / r['seeds']:,.0f} | "
                         f"{r['compile_s']:.1f} |")
    return "\n".join(lines)


@exit_on_user_error("benchmarks.runners.wall")
def main(argv=None):
    p = OneLineParser(prog="benchmarks.runners.wall", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="synthetic:400")
    p.add_argument("--seeds", type=positive_int, default=8, help="seeds per model (lanes = 2 x seeds)")
    p.add_argument("--epochs", type=int_list(epochs_count, "epoch counts like 30,60"), default=[30, 60],
                   help="one or two epoch counts")
    p.add_argument("--repeats", type=positive_int, default=3, help="runs per epoch count (median)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repo", action="append", default=[], metavar="LABEL=PATH",
                   help="also run the checkout at PATH, reported as LABEL (before/after)")
    p.add_argument("--lanes", type=int_list(), default=[], help="lane counts for part 2, e.g. 1,2,4,8,16,32,64")
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--images", type=positive_int, default=2048,
                   help="training images per lane per timed epoch (part 2)")
    p.add_argument("--speed-repeats", type=positive_int, default=3)
    p.add_argument("--skip-command", action="store_true", help="part 2 only")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if len(a.epochs) > 2:
        p.error(f"--epochs: one or two epoch counts, got {len(a.epochs)}")
    for r in a.repo:
        label, _, path = r.partition("=")
        if not label or not os.path.isdir(path):
            p.error(f"--repo {r!r}: expected LABEL=PATH with PATH a checkout's folder")
    out_folder(p, a.out)
    data_source(p, a.data)
    try:
        run(a, argv)
    except RuntimeError as e:  # a training command failed: its own one line, after ours
        p.exit(1, f"{p.prog}: error: {e}\n")


def run(a, argv):
    result = {"command": [] if a.skip_command else command_table(a), "lanes": lanes_table(a) if a.lanes else [],
              "compute_epoch_s": None if a.skip_command else compute_per_epoch(a),
              "args": vars(a),
              "invocation": "python -m benchmarks.runners.wall " + " ".join(sys.argv[1:] if argv is None else argv)}
    os.makedirs(a.out, exist_ok=True)
    atomic_write_text(os.path.join(a.out, "wall.json"), json.dumps(result, indent=1) + "\n")
    atomic_write_text(os.path.join(a.out, "wall.md"), markdown(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
