"""The report's section on the training loss measured in eval mode (claim c1e), from runs trained for their
first epochs with --eval-train (`benchmarks.runners.convergence --epochs 10 --flax-args=--eval-train
--torch-args=--eval-train`). Whether they are runs of the main runs' protocol is read from the settings both
histories record, and whether their train and val columns equal the main runs' is measured run by run, not
assumed (the main runs may come from another code version or machine); c1 is judged again on the same runs,
so that c1 and c1e compare the same runs."""
from dataclasses import dataclass

import numpy as np

from benchmarks.folders import convergence_histories
from benchmarks.report.claims import tutorial_claims
from benchmarks.report.provenance import code_key, machine_label, seed_ranges
from experiment.variants import MODELS

SAME_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")
SETTINGS = ("batch_size", "lr", "val_fraction", "split_seed", "subset")   # config fields that make the protocol
DATA = ("source", "n_train", "n_val", "n_test", "fingerprint")            # what the data record says of the images


@dataclass
class EvalTrain:
    conv: dict      # its convergence.json
    hs: dict        # {framework: {model: [histories]}}
    claims: dict    # {framework: {claim id: verdict}}: c1 and c1e judged on these runs


def load(folder):
    hs, conv = convergence_histories(folder)
    claims = {fw: {c["id"]: c for c in tutorial_claims(by_model["baseline"], by_model["dropout"])
                   if c["id"] in ("c1", "c1e")} for fw, by_model in hs.items()}
    return EvalTrain(conv, hs, claims)


@dataclass
class Repeat:
    """One --eval-train run against its main run (same framework, model and seed)."""
    model: str
    seed: int
    epochs: int            # the epochs both have
    worst: float           # the largest |difference| of SAME_COLUMNS over them
    first: int | None      # the first epoch that differs (None: none does)
    moved: bool            # trained on another machine than its main run


def repeats(measured, main):
    """Each run of `measured` that has a main run, against it."""
    by_seed = {(h["model"], h["seed"]): h for h in main}
    out = []
    for h in measured:
        ref = by_seed.get((h["model"], h["seed"]))
        if ref is None:
            continue
        n = min(len(h["epochs"]), len(ref["epochs"]))
        gaps = np.array([[abs(e[k] - r[k]) for k in SAME_COLUMNS] for e, r in zip(h["epochs"][:n], ref["epochs"][:n])])
        differs = gaps.max(axis=1) > 0 if n else np.zeros(0, bool)
        first = int(np.argmax(differs)) + 1 if differs.any() else None
        out.append(Repeat(h["model"], h["seed"], n, float(gaps.max()) if n else 0.0, first,
                          machine_label(h) != machine_label(ref)))
    return out


def settings(h):
    """What a history records of its protocol: SETTINGS from its config, DATA from its data record, and the
    dropout rate of a Dropout run (a BaseLine run's recorded rate is not used)."""
    config, data = h.get("config") or {}, h.get("data") or {}
    said = {k: config[k] for k in SETTINGS if k in config}
    said.update({f"data {k}": data[k] for k in DATA if k in data})
    if h.get("model") == "dropout" and "dropout_rate" in config:
        said["dropout_rate"] = config["dropout_rate"]
    return said


def other_settings(measured, main):
    """'batch_size 32 (main runs: 64)' for each setting in which a run differs from its main run (both record it)."""
    by_seed = {(h["model"], h["seed"]): h for h in main}
    found = {}
    for h in measured:
        ref = by_seed.get((h["model"], h["seed"]))
        if ref is not None:
            mine, theirs = settings(h), settings(ref)
            for k in mine.keys() & theirs.keys():
                if mine[k] != theirs[k]:
                    found.setdefault(f"{k} {mine[k]} (main runs: {theirs[k]})", None)
    return list(found)


def runs_words(runs):
    """'seeds 0–1 (4 runs)' / 'seed 2 (baseline) (1 run)': the seeds whose every model is among `runs`."""
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r.seed, set()).add(r.model)
    whole = [s for s, ms in by_seed.items() if ms == set(MODELS)]
    partial = [f"{s} ({', '.join(sorted(ms))})" for s, ms in sorted(by_seed.items()) if ms != set(MODELS)]
    seeds = ", ".join(x for x in [seed_ranges(whole)] + partial if x)
    plural = len(by_seed) > 1 or any(c in seeds for c in "–,")
    return f"seed{'s' if plural else ''} {seeds} ({len(runs)} run{'s' if len(runs) > 1 else ''})"


def pairs_repeated(found, main):
    """Seeds whose BaseLine and Dropout main runs were written by two code versions and are both repeated
    bit for bit by the --eval-train runs (one version): those versions trained that pair alike."""
    same = {(r.model, r.seed) for r in found if r.first is None}
    by_seed = {(h["model"], h["seed"]): h for h in main}
    seeds = sorted({s for _, s in same})
    return [s for s in seeds if all((m, s) in same and (m, s) in by_seed for m in MODELS)
            and code_key(by_seed[("baseline", s)]) != code_key(by_seed[("dropout", s)])]


def settled(et, main_hs):
    """{framework: the sentence the claims section adds where the --eval-train runs repeat both runs of a
    pair that two code versions wrote}, for the frameworks that have such a pair."""
    out = {}
    for fw, by_model in (et.hs.items() if et else ()):
        runs = by_model["baseline"] + by_model["dropout"]
        main = main_hs.get(fw, {}).get("baseline", []) + main_hs.get(fw, {}).get("dropout", [])
        found = repeats(runs, main)
        seeds = pairs_repeated(found, main)
        if seeds:
            n = min(r.epochs for r in found)
            out[fw] = (f"The --eval-train runs, of one code version, repeat both runs of seed"
                       f"{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} bit for bit over epochs 1–{n} "
                       "(*The training loss in eval mode* below): there the code versions trained the pair alike.")
    return out


def against_main(measured, main):
    """The third column: which runs repeat their main runs bit for bit, which differ and by how much."""
    found = repeats(measured, main)
    if not found:
        return "no main run to compare"
    n = min(r.epochs for r in found)
    main_has = min(len(h["epochs"]) for h in main)
    over = f"over epochs 1–{n}" + (f" (the main runs have {main_has})" if main_has < max(len(h["epochs"]) for h in
                                                                                         measured) else "")
    same = [r for r in found if r.first is None]
    differ = [r for r in found if r.first is not None]
    said = [f"{runs_words(same)} repeat their main runs bit for bit {over}"] if same else []
    if differ:
        moved = sum(r.moved for r in differ)
        elsewhere = f"{moved} of them on another machine than their main run; " if moved else ""
        said.append(f"{runs_words(differ)} differ from epoch {min(r.first for r in differ)}, by up to "
                    f"{max(r.worst for r in differ):.2g} ({elsewhere}the main runs' code versions are under "
                    "Provenance)")
    said += [f"seed {s}: its BaseLine and Dropout main runs, written by two code versions, are both repeated bit for "
             "bit by one, so those versions trained that pair alike" for s in pairs_repeated(found, main)]
    return "; ".join(said)


def section(et, main_hs):
    """Markdown lines: per framework, c1e beside c1 on the same runs, and how these runs relate to the main ones."""
    runs = [h for by_model in et.hs.values() for hs in by_model.values() for h in hs]
    mains = [h for fw in et.hs for hs in main_hs.get(fw, {}).values() for h in hs]
    reached = min(len(h["epochs"]) for h in runs)
    differ = other_settings(runs, mains)
    protocol = ("of the main runs' protocol (same seeds, data and settings)" if not differ else
                "of other settings than the main runs': " + "; ".join(differ))
    md = ["## The training loss in eval mode (c1e)", "",
          "c1 compares the training loss the tutorial reports: a running average over each epoch's steps in train "
          "mode, which dropout raises partly by construction (half the units are dropped while it is measured). "
          "c1e compares the training loss measured after each epoch in eval mode (no dropout) on the whole training "
          f"set. It comes from runs {protocol}, as both runs' histories record them, trained with "
          f"`--eval-train` for their first {reached} epochs (`" + et.conv["command"] + "`); "
          "measuring in eval mode draws no random numbers and changes no weight (tests/test_eval_train.py). c1 is "
          "judged again on these runs, so that c1 and c1e compare the same runs; the third column says which of "
          "them also repeat the main runs' first epochs.", "",
          "| framework | seeds | train/val columns against the main runs' | c1 (train mode) | c1e (eval mode) |",
          "|---|---|---|---|---|"]
    for fw, by_model in et.hs.items():
        c1, c1e = et.claims[fw].get("c1"), et.claims[fw].get("c1e")
        if c1e is None:
            md.append(f"| {fw} | {len(by_model['baseline'])} | – | – | not measured (trained without --eval-train) |")
            continue
        main = main_hs.get(fw, {})
        same = against_main(by_model["baseline"] + by_model["dropout"],
                            main.get("baseline", []) + main.get("dropout", []))
        md.append(f"| {fw} | {len(by_model['baseline'])} | {same} | **{c1['verdict']}**: {c1['evidence']} | "
                  f"**{c1e['verdict']}**: {c1e['evidence']} |")
    return md + [""]
