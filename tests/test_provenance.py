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


def test_the_machine_counts_count_a_reused_run_once(tmp_path):
    """The sweep's batch-64 lanes are the convergence runs themselves (--reuse copies them): 6 runs, not 12."""
    import shutil

    from benchmarks.folders import lane_file, seed_dir
    from benchmarks.report.summaries import sweep_summary
    from tests.made_up_results import MadeUp, built, write_folder
    from tests.test_verdicts import flat_run, run

    conv = write_folder(tmp_path / "conv", {"flax": MadeUp(run(15, 20), flat_run(560, 20))})
    other = write_folder(tmp_path / "other", {"flax": MadeUp(run(15, 20), flat_run(560, 20), machine="other")})
    sweep = str(tmp_path / "sweep")
    for batch, source in ((64, conv), (256, other)):
        for rate, model in ((0.0, "baseline"), (0.5, "dropout")):
            for s in (0, 1, 2):
                os.makedirs(os.path.dirname(lane_file(sweep, batch, rate, s)), exist_ok=True)
                shutil.copy(os.path.join(seed_dir(source, "flax", model, s), "history.json"),
                            lane_file(sweep, batch, rate, s))
    lanes = {64: "trained earlier", 256: "trained"}
    json.dump({"command": "made up", "batches": [64, 256], "rates": [0.0, 0.5], "seeds": [0, 1, 2], "epochs": 20,
               "summary": sweep_summary(sweep, [64, 256], [0.0, 0.5], [0, 1, 2], lanes), "figures": []},
              open(os.path.join(sweep, "sweep.json"), "w"), default=float)
    text = built(tmp_path, "--convergence", conv, "--sweep", sweep)
    assert "Machines: made-up, 2 cores (6 runs); other, 2 cores (6 runs)" in text
    assert "12 distinct runs" in text
    # control: without the sweep, the same 6 runs
    assert "Machines: made-up, 2 cores (6 runs) " in built(tmp_path, "--convergence", conv)
