"""Made-up results folders on disk, as the convergence runner writes them (histories, evaluation.json,
convergence.json), for tests that build a whole report from curves whose answer is known."""
import json
import os
from dataclasses import dataclass, field

import numpy as np

from benchmarks.folders import seed_dir
from benchmarks.report import build as report
from benchmarks.report.summaries import convergence_summary
from tests.test_verdicts import N_VAL, histories


@dataclass
class MadeUp:
    """One framework's runs: (val correct counts, train loss, val loss) arrays [seeds, epochs] per model."""
    base: tuple
    drop: tuple
    seeds: tuple = (0, 1, 2)
    planned: int | None = None           # the epochs the run asked for (default: those it has)
    eval_loss: np.ndarray | None = None  # --eval-train's column for BaseLine; Dropout's is 0.2 above
    test_acc: tuple | None = None        # (BaseLine's, Dropout's) test accuracy per seed
    config: dict = field(default_factory=dict)  # settings every history records
    machine: str = "made-up"


def write_runs(out, fw, spec):
    for m, curves in (("baseline", spec.base), ("dropout", spec.drop)):
        for i, (s, h) in enumerate(zip(spec.seeds, histories(*curves))):
            rows = [{**e, "train_acc": 0.5, "seconds": 1.0} for e in h["epochs"]]
            if spec.eval_loss is not None:
                for e, v in zip(rows, spec.eval_loss[i] + (0.2 if m == "dropout" else 0.0)):
                    e["train_eval_loss"] = float(v)
            h = {**h, "framework": fw, "model": m, "seed": s, "device": "cpu:cpu", "epochs": rows,
                 "machine": {"processor": spec.machine, "cores": 2},
                 "config": {"epochs": spec.planned or len(rows), **spec.config},
                 "data": {"n_train": 4 * N_VAL, "n_val": N_VAL, "n_test": N_VAL}}
            os.makedirs(seed_dir(out, fw, m, s), exist_ok=True)
            with open(os.path.join(seed_dir(out, fw, m, s), "history.json"), "w") as f:
                json.dump(h, f)
            if spec.test_acc is not None:
                acc = spec.test_acc[0 if m == "baseline" else 1][i]
                with open(os.path.join(seed_dir(out, fw, m, s), "evaluation.json"), "w") as f:
                    json.dump({"test_acc": acc}, f)


def write_folder(out, specs, command="made up"):
    """A convergence folder of the frameworks in `specs` ({framework: MadeUp}); returns its path."""
    out = str(out)
    for fw, spec in specs.items():
        write_runs(out, fw, spec)
    seeds = sorted({s for spec in specs.values() for s in spec.seeds})
    planned = max(spec.planned or spec.base[0].shape[1] for spec in specs.values())
    conv = {"command": command, "seeds": seeds, "batch_size": 64,
            **convergence_summary(out, list(specs), seeds, planned)}
    with open(os.path.join(out, "convergence.json"), "w") as f:
        json.dump(conv, f)
    return out


def built(tmp_path, *args):
    """REPORT.md's text, built with these flags into tmp_path/report."""
    out = str(tmp_path / "report")
    report.main([*args, "--out", out])
    return open(os.path.join(out, "REPORT.md")).read()


def short(text):
    """The first screen ('In short')."""
    return text.split("## In short")[1].split("\n## ")[0]
