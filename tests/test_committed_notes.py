"""The committed CPU notes say only what the committed table shows: each sentence of
NOTES-equivalence.md that states a verdict is checked against the equivalence rows and the seed
statistics recomputed from the committed histories, and the notes hold no number of their own (every
number is a generated line of the report)."""
import json
import os
import re

import pytest

from benchmarks import folders
from benchmarks.report import sections
from benchmarks.report.equivalence import equivalence
from benchmarks.report.stats import ALPHA, tost
from tests.conftest import REPO

CPU = os.path.join(REPO, "benchmarks", "results", "cpu")


@pytest.fixture(scope="module")
def rows():
    conv_dir = os.path.join(CPU, "convergence")
    conv = json.load(open(os.path.join(conv_dir, "convergence.json")))
    return equivalence(folders.histories_of(conv_dir, conv, ["flax", "torch"]))


@pytest.fixture(scope="module")
def hs():
    conv_dir = os.path.join(CPU, "convergence")
    return folders.histories_of(conv_dir, json.load(open(os.path.join(conv_dir, "convergence.json"))), ["flax", "torch"])


def run_means(hs, fw, field="train_loss"):
    return {h["seed"]: sections.run_mean(h, field) for h in hs[fw]["baseline"]}


def first_vs_rest(means, k=sections.EARLY):
    first = sorted(means)[:k]
    return tost([means[s] for s in first], [means[s] for s in means if s not in first], 0.0)


def offset(hs, field, k=None):
    m = {fw: run_means(hs, fw, field) for fw in hs}
    return tost(*[[m[fw][s] for s in sorted(m[fw])[:k]] for fw in ("flax", "torch")], 0.0)


def verdict_sentences(rows, hs=None):
    """Each verdict sentence of the notes, and whether the rows (and the histories) bear it out."""
    after_min = [r for r in rows if r["model"] == "baseline" and r["metric"] == "val loss" and r["epoch"] in (50, 100)]
    said = {
        "no row of the table differs after the Benjamini–Hochberg correction": not any(r["different"] for r in rows),
        "For BaseLine's validation loss after its minimum, the observed difference is at or beyond the margin "
        "but its CI still reaches inside it": all(abs(r["diff"]) >= r["margin"] and r["ci90"][0] < r["margin"]
                                                  and r["ci90"][1] > -r["margin"] for r in after_min),
    }
    if hs is not None:
        torch = run_means(hs, "torch")
        lowest = sorted(torch, key=torch.get)[:sections.EARLY]
        said.update({
            "With the first seeds alone, Flax's BaseLine training loss was above PyTorch's and its validation loss "
            "below": offset(hs, "train_loss", sections.EARLY)["diff"] > 0 > offset(hs, "val_loss", sections.EARLY)["diff"],
            "over all seeds the training-loss offset is smaller and its CI covers zero":
                abs(offset(hs, "train_loss")["diff"]) < abs(offset(hs, "train_loss", sections.EARLY)["diff"])
                and offset(hs, "train_loss")["ci90"][0] < 0 < offset(hs, "train_loss")["ci90"][1],
            "PyTorch's first seeds are not its lowest-loss BaseLine runs (see their ranks above), and their "
            "difference from its later seeds is not significant; nor is Flax's":
                sorted(lowest) != sorted(torch)[:sections.EARLY] and not first_vs_rest(torch)["different"]
                and not first_vs_rest(run_means(hs, "flax"))["different"],
        })
    return said


def test_the_notes_agree_with_the_table(rows, hs):
    notes = " ".join(open(os.path.join(CPU, "NOTES-equivalence.md")).read().split())
    for sentence, holds in verdict_sentences(rows, hs).items():
        assert " ".join(sentence.split()) in notes and holds, sentence
    # control: with the differences left uncorrected, BaseLine at epoch 10 would differ and the
    # notes' first sentence would no longer hold
    uncorrected = [{**r, "different": r["p_two"] < ALPHA} for r in rows]
    assert not list(verdict_sentences(uncorrected).values())[0]


NUMBER_WORDS = r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred|half|halved|twice|double"


def hand_written_numbers(text):
    """Numbers a person typed: digits not part of a name (float32, EQUIV_*), and number words."""
    return re.findall(r"(?<![A-Za-z_\d])[-+−±]?\d[\d.,%]*", text) + \
        re.findall(rf"\b(?:{NUMBER_WORDS})\b", text, flags=re.I)


def test_the_notes_hold_no_hand_written_numbers():
    notes = open(os.path.join(CPU, "NOTES-equivalence.md")).read()
    assert hand_written_numbers(notes) == []
    # control: the sentence the audit found false, and a typed p-value, are caught
    assert hand_written_numbers("PyTorch's seeds 0–2 are its three lowest-loss BaseLine runs (p = 0.27)") == \
        ["0", "2", "0.27", "three"]


def test_the_numbers_the_notes_rest_on_are_generated(hs):
    lines = "\n".join(sections.seed_draw_lines(hs))
    torch = run_means(hs, "torch")
    ranked = sorted(torch, key=torch.get)
    assert "torch: BaseLine's training loss averaged over each run, lowest first: " + ", ".join(
        f"seed {s} {torch[s]:.3f}" for s in ranked) in lines
    t = first_vs_rest(torch)
    assert f"Welch p = {t['p_two']:.2g}" in lines and not t["different"]
    report_md = open(os.path.join(CPU, "REPORT.md")).read()
    assert lines in report_md  # the committed report carries them
