"""The report's convergence table: per framework and model, each summary row of convergence.json
(mean ± 95% CI over seeds), or why a cell has no number."""
import math

from benchmarks.report.extent import cut, of
from benchmarks.report.summaries import TRAIN_LOSS_AT
from benchmarks.report.words import fmt
from experiment.variants import MODELS

NAMES = {"baseline": "BaseLine", "dropout": "Dropout"}


END = "end"  # a row about the run's planned last epoch
# label, key in convergence.json's summary, scale, digits, unit, the epoch the row needs (None: over
# the epochs the run reached; a cut run's column header says how many those are)
ROWS = [("best val accuracy", "best_val_acc", 100, 2, "%", None),
        ("epoch of best val accuracy", "best_val_acc_epoch", 1, 1, "", None),
        ("best val loss", "best_val_loss", 1, 3, "", None),
        ("epoch of best val loss", "best_val_loss_epoch", 1, 1, "", None),
        ("val accuracy, last epoch", "last_val_acc", 100, 2, "%", END),
        ("val − train loss, last epoch", "last_gap", 1, 3, "", END),
        ("epochs to 45% val acc", "epochs_to_45", 1, 1, "", None),
        ("epochs to 50% val acc", "epochs_to_50", 1, 1, "", None),
        ("epochs to 55% val acc", "epochs_to_55", 1, 1, "", None),
        *[(f"train loss after {e} epochs", f"train_loss_at_{e}", 1, 3, "", e) for e in TRAIN_LOSS_AT],
        ("test accuracy (best-val-loss checkpoint)", "test_acc", 100, 2, "%", None)]


def cell(stat, row, ext, total):
    """One table cell: the number, or why there is none; never a value of an earlier epoch."""
    _, key, scale, digits, unit, needs = row
    needed = ext["planned"] if needs == END else needs
    if needed is not None and needed > ext["reached"]:
        return f"not reached ({of(ext)})"
    if stat["mean"] is None and key == "test_acc":
        return "not evaluated"
    s = fmt(stat, scale, digits, unit, total)
    return f"not within {ext['reached']} epochs" if s == "never" and cut(ext) else s


def convergence_table(conv, frameworks, exts):
    cols = [(fw, m) for fw in frameworks for m in MODELS]
    lines = ["| metric | " + " | ".join(f"{fw} {NAMES[m]}" + (f" ({of(exts[fw])})" if cut(exts[fw]) else "")
                                        for fw, m in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for row in ROWS:
        cells = [cell(conv[fw]["summary"][m][row[1]], row, exts[fw], len(conv["seeds"])) for fw, m in cols]
        lines.append(f"| {row[0]} | " + " | ".join(cells) + " |")
    for t in ("45", "50", "55"):
        cells = []
        for fw, m in cols:
            r = conv[fw]["slowdown_dropout_over_baseline"][f"epochs_to_{t}"]
            cells.append("" if m == "baseline" else (f"{r:.2f}×" if r and math.isfinite(r) else "–"))
        lines.append(f"| Dropout/BaseLine epochs to {t}% | " + " | ".join(cells) + " |")
    return "\n".join(lines)
