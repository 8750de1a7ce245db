"""python -m benchmarks.report: REPORT.md with figures from a convergence run (and a speed run).

  python -m benchmarks.report --convergence benchmarks/results/cpu/convergence --speed benchmarks/results/cpu-speed \
      --out benchmarks/results/cpu
"""
import argparse
import json
import os
import shlex
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.convergence import seed_dir  # noqa: E402
from benchmarks.speed import table as speed_table  # noqa: E402
from experiment.atomic import atomic_write_text  # noqa: E402
from experiment.cli import MODELS  # noqa: E402
from experiment.history import column, load_history  # noqa: E402
from experiment.plots import TUTORIAL_PREFIX, plot_mean_std, save_panels  # noqa: E402

NAMES = {"baseline": "BaseLine", "dropout": "Dropout"}


def fmt(stat, scale=1.0, digits=1, unit="", total=None):
    """'mean ± ci'; with `total`, says how many seeds the mean is over when some never got there."""
    if stat["mean"] is None:
        return "never"
    s = f"{scale * stat['mean']:.{digits}f}{unit}"
    if stat["ci95"] is not None:
        s += f" ± {scale * stat['ci95']:.{digits}f}"
    if total is not None and stat["n"] < total:
        s += f" ({stat['n']} of {total} seeds)"
    return s


def verdicts(fw, r):
    s, E = r["summary"], r["epochs"]
    b, d = s["baseline"], s["dropout"]
    out = []
    drop_b = [p["best_val_acc"] - p["last_val_acc"] for p in r["per_seed"]["baseline"]]
    fall = np.mean(drop_b)
    ok = fall > 0.01 and b["best_val_acc_epoch"]["mean"] < 0.75 * E and b["last_gap"]["mean"] > 0.5
    out.append(f"(a) BaseLine overfits, val accuracy peaks mid-run (tutorial: ≈ epoch 50): "
               f"**{'confirmed' if ok else 'refuted'}** — peaks at epoch {fmt(b['best_val_acc_epoch'])} with "
               f"{fmt(b['best_val_acc'], 100, 2, '%')}, ends at {fmt(b['last_val_acc'], 100, 2, '%')} "
               f"(−{100 * fall:.2f} points); val−train loss gap at epoch {E}: {fmt(b['last_gap'], 1, 2)}"
               f"{'' if b['best_val_acc_epoch']['mean'] > 30 else '; the peak comes much earlier than the tutorial’s'}")
    # Overfitting shows in the validation loss: rising from its minimum while train loss falls.
    rise = {m: np.mean([p["last_val_loss"] / p["best_val_loss"] - 1 for p in r["per_seed"][m]]) for m in MODELS}
    drop_d = [p["best_val_acc"] - p["last_val_acc"] for p in r["per_seed"]["dropout"]]
    ok = rise["dropout"] < 0.05 and d["last_gap"]["mean"] < 0.1
    out.append(f"(b) Dropout removes the overfitting: **{'confirmed' if ok else 'refuted'}** — val loss at epoch {E} is "
               f"{100 * rise['dropout']:.1f}% above its minimum (BaseLine: {100 * rise['baseline']:.0f}%), best at "
               f"epoch {fmt(d['best_val_loss_epoch'])}; val−train loss gap {fmt(d['last_gap'], 1, 2)}; val accuracy "
               f"{fmt(d['last_val_acc'], 100, 2, '%')} at epoch {E}, {100 * np.mean(drop_d):.2f} points under its "
               f"best single epoch {fmt(d['best_val_acc'], 100, 2, '%')}")
    slow = r["slowdown_dropout_over_baseline"]["epochs_to_50"]
    ok = d["train_loss_at_10"]["mean"] > b["train_loss_at_10"]["mean"] and (slow is None or slow > 1)
    out.append(f"(c) Dropout slows the loss decrease: **{'confirmed' if ok else 'refuted'}** — train loss after "
               f"10 epochs {fmt(b['train_loss_at_10'], 1, 3)} (BaseLine) vs {fmt(d['train_loss_at_10'], 1, 3)} "
               f"(Dropout); epochs to 50% val accuracy {fmt(b['epochs_to_50'])} vs {fmt(d['epochs_to_50'])}"
               + (f" ({slow:.1f}× slower)" if slow else ""))
    c = r["crossing"]
    if c["mean_curves"] is None:
        verdict = "refuted" if E >= 300 else "undecided"
        detail = f"the mean curves do not cross within {E} epochs"
    else:
        verdict = "confirmed" if 200 <= c["mean_curves"] <= 300 else "refuted"
        detail = (f"mean val-accuracy curves cross at epoch {c['mean_curves']} and Dropout stays ahead; per seed "
                  f"pair: {fmt(c['per_seed_mean'])}" + (" — far earlier than 200–300" if c["mean_curves"] < 200 else ""))
    out.append(f"(d) Dropout overtakes BaseLine by epoch 200–300: **{verdict}** — {detail}")
    return out


def figures(conv_dir, out, frameworks, seeds, n):
    files = []
    hs = {fw: {m: [load_history(os.path.join(seed_dir(conv_dir, fw, m, s), "history.json")) for s in seeds]
               for m in MODELS} for fw in frameworks}
    for fw in frameworks:
        path = f"fig_{fw}_curves.png"
        plot_mean_std({TUTORIAL_PREFIX[m]: hs[fw][m] for m in MODELS}, os.path.join(out, path),
                      title=f"{fw}: BaseLine vs Dropout, mean ± std over {n} seeds")
        files.append((f"{fw}: the tutorial's figure, mean ± std over seeds", path))
    for m in MODELS:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for fw in frameworks:
            for split, style in (("train", "-"), ("val", "--")):
                for ax, field, scale in ((axes[0], "loss", 1), (axes[1], "acc", 100)):
                    k = min(len(h["epochs"]) for h in hs[fw][m])
                    v = scale * np.stack([column(h, f"{split}_{field}")[:k] for h in hs[fw][m]])
                    (line,) = ax.plot(np.arange(1, k + 1), v.mean(0), style, label=f"{fw} {split}")
                    ax.fill_between(np.arange(1, k + 1), v.mean(0) - v.std(0), v.mean(0) + v.std(0),
                                    color=line.get_color(), alpha=0.15)
        path = f"fig_{m}_frameworks.png"
        save_panels(fig, axes, os.path.join(out, path), f"{NAMES[m]}: frameworks overlaid (mean ± std over {n} seeds)")
        files.append((f"{NAMES[m]}: both frameworks", path))
    return files


ROWS = [("best val accuracy", "best_val_acc", 100, 2, "%"), ("epoch of best val accuracy", "best_val_acc_epoch", 1, 1, ""),
        ("best val loss", "best_val_loss", 1, 3, ""), ("epoch of best val loss", "best_val_loss_epoch", 1, 1, ""),
        ("val accuracy, last epoch", "last_val_acc", 100, 2, "%"), ("val − train loss, last epoch", "last_gap", 1, 3, ""),
        ("epochs to 45% val acc", "epochs_to_45", 1, 1, ""), ("epochs to 50% val acc", "epochs_to_50", 1, 1, ""),
        ("epochs to 55% val acc", "epochs_to_55", 1, 1, ""), ("train loss after 10 epochs", "train_loss_at_10", 1, 3, ""),
        ("train loss after 50 epochs", "train_loss_at_50", 1, 3, ""), ("train loss after 100 epochs", "train_loss_at_100", 1, 3, ""),
        ("test accuracy (best-val-loss checkpoint)", "test_acc", 100, 2, "%")]


def convergence_table(conv, frameworks):
    cols = [(fw, m) for fw in frameworks for m in MODELS]
    lines = ["| metric | " + " | ".join(f"{fw} {NAMES[m]}" for fw, m in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for label, key, scale, digits, unit in ROWS:
        cells = [fmt(conv[fw]["summary"][m][key], scale, digits, unit, len(conv["seeds"])) for fw, m in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for t in ("45", "50", "55"):
        cells = []
        for fw, m in cols:
            r = conv[fw]["slowdown_dropout_over_baseline"][f"epochs_to_{t}"]
            cells.append("" if m == "baseline" else (f"{r:.2f}×" if r else "–"))
        lines.append(f"| Dropout/BaseLine epochs to {t}% | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks.report", description=__doc__.splitlines()[0])
    p.add_argument("--convergence", required=True, help="folder written by benchmarks.convergence")
    p.add_argument("--speed", default=None, help="folder written by benchmarks.speed")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="")
    a = p.parse_args(argv)
    conv = json.load(open(os.path.join(a.convergence, "convergence.json")))
    frameworks = [fw for fw in ("flax", "torch") if fw in conv]
    seeds, n = conv["seeds"], len(conv["seeds"])
    os.makedirs(a.out, exist_ok=True)
    h0 = load_history(os.path.join(seed_dir(a.convergence, frameworks[0], "baseline", seeds[0]), "history.json"))
    md = [f"# BaseLine vs Dropout LeNet on CIFAR-10{(' — ' + a.title) if a.title else ''}", "",
          f"Machine: {h0['machine']['processor']}, {h0['machine']['cores']} cores; device {h0['device']}; "
          f"data: {h0['data']['n_train']} train / {h0['data']['n_val']} val / {h0['data']['n_test']} test images; "
          f"batch {conv['batch_size']}; seeds {seeds}; {conv[frameworks[0]]['epochs']} epochs.", "",
          "Made by:", "", f"    {conv['command']}",
          "    python -m benchmarks.report " + shlex.join(sys.argv[1:] if argv is None else argv), ""]
    if a.speed:
        sp = json.load(open(os.path.join(a.speed, "speed.json")))
        md.insert(6, f"    {sp['command']}")
    md += ["## The tutorial's claims", ""]
    for fw in frameworks:
        md += [f"**{fw}**", ""] + [f"- {v}" for v in verdicts(fw, conv[fw])] + [""]
    md += [f"## Convergence (mean ± 95% CI over {n} seeds)", "", convergence_table(conv, frameworks), "",
           "Train loss and accuracy are running averages over each epoch in train mode (dropout active), as the "
           "tutorial reports them. 'never' = not reached within the run.", ""]
    for caption, path in figures(a.convergence, a.out, frameworks, seeds, n):
        md += [f"### {caption}", "", f"![{caption}]({path})", ""]
    if a.speed:
        md += ["## Speed (img/s; ratios against PyTorch eager at the same batch size)", "",
               "Training: median over processes of each process's median timed epoch; evaluation: the "
               "10,000-image validation pass as the training loop runs it. `vmap8` counts images of all "
               "8 models. Made by `" + sp["command"] + "`.", "",
               speed_table(sp["rows"]), "", f"Machine: {sp['machine']}", ""]
    atomic_write_text(os.path.join(a.out, "REPORT.md"), "\n".join(md) + "\n")
    print(f"wrote {os.path.join(a.out, 'REPORT.md')}")


if __name__ == "__main__":
    main()
