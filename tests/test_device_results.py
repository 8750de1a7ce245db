"""The report rebuilt from a real accelerator run whose every step reached its time cap (PyTorch at
10 of 100 epochs, Flax at 70 of 100 and 168 of 300): it names the cut runs and judges nothing they
did not reach. Skips where that run's results are not beside the checkout."""
import os
import re
import tarfile

import pytest

from benchmarks.report import build as report
from benchmarks.report.claims import need
from benchmarks.report.convergence_table import END, ROWS
from tests.conftest import DEVICE_RESULTS
from tests.test_evidence_words import garbled


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if not os.path.exists(DEVICE_RESULTS):
        pytest.skip("the accelerator run's results are not beside the checkout")
    out = tmp_path_factory.mktemp("device")
    with tarfile.open(DEVICE_RESULTS) as tar:
        keep = [m for m in tar.getmembers() if m.name.lstrip("./").startswith("convergence")]
        tar.extractall(out, members=keep, filter="data")
    return out


def built(results, folder):
    report.main(["--convergence", str(results / folder), "--out", str(results / f"report-{folder}")])
    return open(results / f"report-{folder}" / "REPORT.md").read()


def claim_rows(text, fw):
    section = text.split(f"**{fw}**")[1].split("\n\n**")[0].split("\n## ")[0]
    return re.findall(r"^\| (\w+) \| [^|]+ \| \*\*([a-z ]+)\*\* \|", section, re.M)


# The claims each cut run leaves not judged: those whose epoch it did not reach (a1, a3, b and d need the
# tutorial's epoch 100, a2 epoch 60), and d2 at 168 of 300, whose test needs the planned end; d1 at 168 is
# judged (Dropout ahead from an epoch before 200 through 168 refutes 'not before 200').
NOT_JUDGED = {"convergence": {"flax": {"a1", "a3", "b", "d1", "d2"}, "torch": {"a1", "a2", "a3", "b", "d1", "d2"}},
              "convergence-300": {"flax": {"d2"}}}


@pytest.mark.parametrize("folder, runs", [
    ("convergence", {"flax": (70, 100), "torch": (10, 100)}),
    ("convergence-300", {"flax": (168, 300)}),
])
def test_a_report_of_cut_runs_names_them_and_judges_only_what_they_reached(results, folder, runs):
    text = built(results, folder)
    assert garbled(text) == []  # every sentence reads right on runs cut short (the audit's garbles)
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections[0] == "In short" and sections[-1] == "Made by"  # answers first, commands last
    short = text.split("## In short")[1].split("\n## ")[0]
    assert short.count("\n- **") == 5 and "not judged" in short  # the cut runs' claims, said as such
    for fw, (reached, planned) in runs.items():
        assert f"- {fw}, 8 seeds: {reached} of {planned} epochs, stopped (" in text
        rows = claim_rows(text, fw)
        assert len(rows) == 8
        assert {claim for claim, verdict in rows if verdict == "not judged"} == NOT_JUDGED[folder][fw]
        for claim, verdict in rows:  # never judged where the claim needs an epoch not reached
            assert verdict == "not judged" or need(claim, planned) <= reached, (fw, claim, verdict)
    # no table cell shows a number under an epoch its run did not reach
    table = text.split("## Convergence")[1].split("\n\n")[1].splitlines()
    columns = [c.split(" ")[0] for c in table[0].split(" | ")[1:]]
    for label, *_, needs in ROWS:
        line = next(t for t in table if t.startswith(f"| {label} |"))
        for fw, c in zip(columns, line.strip(" |").split(" | ")[1:]):
            needed = runs[fw][1] if needs == END else needs
            assert c.startswith("not reached") == (needed is not None and needed > runs[fw][0]), (label, fw, c)
    if len(runs) == 2:
        assert "Epochs compared: 1–10, those both frameworks reached" in text
        assert not re.search(r"^\| \w+ \| [^|]+ \| (50|100) \|", text.split("## Do the frameworks agree?")[1], re.M)
