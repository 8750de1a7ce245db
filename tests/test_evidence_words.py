"""Every evidence sentence of the claims reads correctly whatever the outcome: none (Dropout the same as
BaseLine, a flat curve), negative (Dropout behind, a falling val loss), all (Dropout ahead from the
first epoch in every seed) and some (the CPU report's mix). Made-up histories; the garbles the audit
found on cut runs ("rises by -0.344", "first never", "at epochs none", "in not every seed") are
what each scenario checks for, and each scenario also checks the words it should read."""
import re

import numpy as np
import pytest

from benchmarks.report import words
from benchmarks.report.claims import tutorial_claims
from tests.test_verdicts import flat_run, histories, run

SEEDS, EPOCHS = 6, 100
E = np.arange(1, EPOCHS + 1)

# What a sentence must never read like, whatever the outcome.
GARBLES = [r"\b(rises|falls|leads|changes|above|below|ahead) by -", r"\bat epochs? (none|never|–)",
           r"\bfrom (epoch )?never", r"\bfirst never", r"\bin not every", r"\bat – of", r"through the end: never",
           r"\bnan\b", r"\bby epoch None"]


def garbled(text):
    return [g for g in GARBLES if re.search(g, text)]


def scenario(name):
    """(BaseLine, Dropout) curves of each outcome."""
    base = run(15, EPOCHS, SEEDS)
    if name == "some":  # BaseLine overfits, Dropout ahead from some epoch on
        return base, flat_run(560, EPOCHS, SEEDS)
    if name == "negative":  # val loss falling, Dropout behind throughout
        falling = np.tile(2.0 - 0.01 * E, (SEEDS, 1))
        return (base[0], base[1], falling), flat_run(300, EPOCHS, SEEDS)
    if name == "none":  # a flat val loss, Dropout the same run as BaseLine
        flat = (base[0], base[1], np.ones((SEEDS, EPOCHS)))
        return flat, flat
    if name == "all":  # Dropout ahead from the first epoch, in every seed
        return base, flat_run(700, EPOCHS, SEEDS)
    raise ValueError(name)


EXPECTED = {  # claim: {scenario: words its evidence reads}
    "a1": {"some": "val loss rises by", "negative": "val loss falls by", "none": "val loss does not change",
           "all": "val loss rises by"},
    "a3": {"some": "Dropout leads by", "negative": "BaseLine leads by", "none": "neither leads",
           "all": "Dropout leads by"},
    "d1": {"some": "Dropout is significantly ahead", "negative": "at no epoch", "none": "at no epoch",
           "all": "first at epoch 1 and at every epoch from 1 on"},
}


@pytest.mark.parametrize("outcome", ["none", "negative", "all", "some"])
def test_every_evidence_sentence_reads_correctly_for_every_outcome(outcome):
    base, drop = scenario(outcome)
    claims = {c["id"]: c for c in tutorial_claims(histories(*base), histories(*drop))}
    for claim_id, c in claims.items():
        assert garbled(c["evidence"]) == [], (outcome, claim_id, c["evidence"])
    for claim_id, said in EXPECTED.items():
        assert said[outcome] in claims[claim_id]["evidence"], (outcome, claim_id, claims[claim_id]["evidence"])


def test_the_garble_check_catches_the_sentences_the_audit_found():  # control
    for bad in ("val loss rises by -0.344 ± 0.019", "Dropout leads by -5.66", "first never and at every epoch",
                "change order at epochs none", "significantly above at every epoch from never",
                "training loss lower at the end than there in not every seed"):
        assert garbled(bad), bad
    assert not garbled("val loss falls by 0.344 ± 0.019; BaseLine leads by 5.66 ± 1.00 points")


STAT = {"none": 0.0, "negative": -0.344, "all": 0.5, "some": 0.351}


@pytest.mark.parametrize("outcome", ["none", "negative", "all", "some"])
def test_each_template_with_each_outcome(outcome):
    """The templates the evidence is written with, one outcome at a time."""
    x = {"mean": STAT[outcome], "ci95": 0.019, "n": 6}
    change = words.change(x, digits=3)
    lead = words.lead(x, "Dropout", "BaseLine", "points of val accuracy", digits=2)
    seeds = words.seeds_with({"none": 0, "negative": 0, "all": 6, "some": 4}[outcome], 6)
    epochs = words.at_epochs({"none": [], "negative": [], "all": [1], "some": [35, 37, 39]}[outcome])
    expected = {
        "none": ("does not change (0.000 ± 0.019)", "neither leads (0.00 ± 0.02 points of val accuracy)",
                 "in no seed", "never"),
        "negative": ("falls by 0.344 ± 0.019", "BaseLine leads by 0.34 ± 0.02 points of val accuracy", "in no seed",
                     "never"),
        "all": ("rises by 0.500 ± 0.019", "Dropout leads by 0.50 ± 0.02 points of val accuracy", "in every seed",
                "at epoch 1"),
        "some": ("rises by 0.351 ± 0.019", "Dropout leads by 0.35 ± 0.02 points of val accuracy", "in 4 of 6 seeds",
                 "at epochs 35, 37, 39"),
    }[outcome]
    assert (change, lead, seeds, epochs) == expected
    for text in expected:
        assert garbled(text) == []
