"""The committed CPU notes say only what the committed table shows: each sentence of
NOTES-equivalence.md that states a verdict is checked against the equivalence rows recomputed from
the committed histories (the verdicts themselves are generated lines of the report)."""
import json
import os

import pytest

from benchmarks import report
from benchmarks.equivalence import equivalence
from benchmarks.stats import ALPHA
from tests.conftest import REPO

CPU = os.path.join(REPO, "benchmarks", "results", "cpu")


@pytest.fixture(scope="module")
def rows():
    conv_dir = os.path.join(CPU, "convergence")
    conv = json.load(open(os.path.join(conv_dir, "convergence.json")))
    return equivalence(report.histories_of(conv_dir, conv, ["flax", "torch"]))


def verdict_sentences(rows):
    """Each verdict sentence of the notes, and whether the rows bear it out."""
    after_min = [r for r in rows if r["model"] == "baseline" and r["metric"] == "val loss" and r["epoch"] in (50, 100)]
    return {
        "no row of the table differs after the Benjamini–Hochberg correction (smallest corrected p = "
        f"{min(r['p_two_bh'] for r in rows):.2g})": not any(r["different"] for r in rows),
        "For BaseLine's validation loss after its minimum, the observed difference is at or beyond the ±3% margin "
        "but its CI still reaches inside it": all(abs(r["diff"]) >= r["margin"] and r["ci90"][0] < r["margin"]
                                                  and r["ci90"][1] > -r["margin"] for r in after_min),
    }


def test_the_notes_agree_with_the_table(rows):
    notes = " ".join(open(os.path.join(CPU, "NOTES-equivalence.md")).read().split())
    for sentence, holds in verdict_sentences(rows).items():
        assert " ".join(sentence.split()) in notes and holds, sentence
    # control: with the differences left uncorrected, BaseLine at epoch 10 would differ and the
    # notes' first sentence would no longer hold
    uncorrected = [{**r, "different": r["p_two"] < ALPHA} for r in rows]
    assert not list(verdict_sentences(uncorrected).values())[0]
