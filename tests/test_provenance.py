"""Every history records where, by which code and when it was trained, and the report states it per run
group and flags a comparison that pools machines or code versions (made-up histories, with controls)."""
import json
import os
import subprocess
from types import SimpleNamespace

import pytest

from benchmarks.report import provenance
from benchmarks.folders import histories_of
from benchmarks.report import build as report
from experiment import provenance as where_from
from experiment.config import RunConfig
from experiment.lanes import Lane
from experiment.records import new_history
from flax_impl.options import FlaxOptions
from tests.conftest import REPO, TRAIN

CPU = os.path.join(REPO, "benchmarks", "results", "cpu")


def test_a_history_records_the_commit_a_dirty_flag_and_the_start_date(finished_runs):
    for fw, run in finished_runs.items():
        h = json.load(open(os.path.join(run, "baseline", "history.json")))
        assert set(h["code"]) == {"commit", "dirty"} and h["started"][:2] == "20", fw
        if os.path.isdir(os.path.join(REPO, ".git")) or os.path.isfile(os.path.join(REPO, ".git")):
            head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
            assert h["code"]["commit"] == head.strip() and isinstance(h["code"]["dirty"], bool), fw


def test_the_code_version_never_fails_a_run(tmp_path, monkeypatch):
    assert where_from.code_version(str(tmp_path)) == {"commit": None, "dirty": None}  # not a checkout
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert where_from.code_version() == {"commit": None, "dirty": None}
    monkeypatch.setattr(where_from, "CODE_DIR", str(tmp_path))
    h = new_history(Lane("baseline", 0.0, 0, "baseline"), RunConfig.from_args("flax", {}, FlaxOptions),
                    SimpleNamespace(device="cpu", versions={}), {})
    assert h["code"] == {"commit": None, "dirty": None} and h["started"]


def test_a_resumed_run_records_who_trained_its_later_epochs(tmp_path):
    out = str(tmp_path / "run")
    TRAIN["torch"](["--data", "synthetic:300", "--model", "baseline", "--epochs", "1", "--no-progress", "--out", out])
    TRAIN["torch"](["--resume", out, "--epochs", "2", "--no-progress"])
    h = json.load(open(os.path.join(out, "baseline", "history.json")))
    assert [r["at_epoch"] for r in h["resumed"]] == [2] and set(h["resumed"][0]) >= {"code", "started", "machine"}


def made_up(fw, model, seed, cpu, commit=None, config=("lr", "seed")):
    h = {"framework": fw, "model": model, "seed": seed, "config": dict.fromkeys(config, 0),
         "machine": {"processor": cpu, "cores": 2}}
    if commit:
        h.update(code={"commit": commit * 40, "dirty": False}, started="2026-11-30T01:02:03Z")
    return h


def runs(fw, seeds, cpu, commit=None, config=("lr", "seed")):
    return [made_up(fw, m, s, cpu, commit, config) for m in ("baseline", "dropout") for s in seeds]


def test_a_comparison_of_two_machines_or_commits_says_so():
    one = runs("flax", [0, 1, 2], "Xeon", "a") + runs("torch", [0, 1, 2], "Xeon", "a")
    assert provenance.mixes("the equivalence test", one) is None  # control: one machine, one commit
    machines = runs("flax", [0, 1], "Xeon", "a") + runs("flax", [2, 3], "EPYC", "a")
    said = provenance.mixes("flax's paired tests", machines)
    assert "2 machines (Xeon, 2 cores; EPYC, 2 cores)" in said and "code versions" not in said
    commits = runs("torch", [0, 1], "Xeon", "a") + runs("torch", [2, 3], "Xeon", "b")
    said = provenance.mixes("torch's paired tests", commits)
    assert "2 code versions of torch" in said and "machines" not in said
    # no commit recorded: versions told apart by the config fields they write
    old = runs("torch", [0, 1], "Xeon") + runs("torch", [2, 3], "Xeon", config=("lr", "seed", "compile"))
    assert "2 code versions of torch" in provenance.mixes("x", old)
    assert "not recorded as commits" in provenance.mixes("x", runs("torch", [0, 1], "Xeon"))
    # a pair of one seed trained by two versions
    base, drop = runs("torch", [0, 1], "Xeon", "a")[:2], runs("torch", [0, 1], "Xeon", "a")[2:]
    assert provenance.pairs_mixed("torch's pairs", base, drop) is None
    drop[1] = made_up("torch", "dropout", 1, "Xeon", "b")
    assert "seed 1 (code versions)" in provenance.pairs_mixed("torch's pairs", base, drop)


def test_the_provenance_table_gives_each_run_group():
    flax = runs("flax", [0, 1, 2], "Xeon") + runs("flax", [3, 4], "EPYC", config=("lr", "seed", "precision"))
    torch = runs("torch", [0, 1], "EPYC", "c")
    rows = provenance.groups({"flax": flax, "torch": torch}, flax + torch)
    assert ("flax", "0–2", "Xeon, 2 cores", "not recorded (an earlier version: its config lacks precision, which a "
            "later version writes)", "not recorded") in rows
    assert ("flax", "3–4", "EPYC, 2 cores", "not recorded", "not recorded") in rows
    assert ("torch", "0–1", "EPYC, 2 cores", "commit cccccccccc", "2026-11-30") in rows


@pytest.fixture(scope="module")
def committed():
    return open(os.path.join(CPU, "REPORT.md")).read()


def test_the_cpu_report_states_each_groups_machine_and_the_mixes(committed):
    conv_dir = os.path.join(CPU, "convergence")
    conv = json.load(open(os.path.join(conv_dir, "convergence.json")))
    hs = histories_of(conv_dir, conv, ["flax", "torch"])
    named = {fw: hs[fw]["baseline"] + hs[fw]["dropout"] for fw in hs}
    for row in provenance.groups(named, [h for v in named.values() for h in v]):
        assert f"| {' | '.join(row[:3])} | not recorded" in committed, row  # (peers: the sweep's lanes too)
    assert "Intel(R) Xeon(R) Processor" in committed and "AMD EPYC" in committed
    assert "are pooled in the equivalence test" in committed
