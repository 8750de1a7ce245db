"""The prepared accelerator run: its plan from the measured costs (and their evidence), the calibration
that re-plans a lease, what a lease brings back, and a tiny lease on the CPU continued by a second."""
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from benchmarks.device import calibrate
from benchmarks.device import pack as device_pack
from benchmarks.device import plan as device_plan
from benchmarks.device.run import compiled_before, missing, progress_of, resume_folders
from benchmarks.device.steps import HEADLINE, VARIANTS, by_name, programme
from tests.conftest import REPO


def work_folders_left(tmp_path):
    return [d for d in os.listdir(tmp_path / "tmp") if d.startswith("device_run.")]


def device_run(*args, tmp_path, timeout=60, env=None, cwd=REPO):
    """benchmarks/device_run.sh ARGS typed in `cwd`, its work folder under tmp_path/tmp; `env` adds to (or,
    with "", empties) variables of this environment."""
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path / "tmp"), **(env or {}))
    os.makedirs(env["TMPDIR"], exist_ok=True)
    return subprocess.run(["bash", os.path.join(REPO, "benchmarks", "device_run.sh"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def h200_plan(steps=None, budget=540, **ctx):
    costs = device_plan.load_costs()
    c = device_plan.Context(costs, budget, **ctx)
    return device_plan.plan_leases(steps or programme(tiny=False), c, budget), c


def names(lease):
    return [step.name for step, _ in lease[1]]


def test_tiny_plan_places_every_step_and_runs_nothing(tmp_path):
    r = device_run(tmp_path / "out", "--tiny", "--plan", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert all(f"  {s.name} " in r.stdout for s in programme(tiny=True)) and "every step placed" in r.stdout
    assert "planned as the H200's" in r.stdout
    assert not (tmp_path / "out").exists() and work_folders_left(tmp_path) == []  # work folder removed


def test_lease_1_is_the_headline_report_and_all_of_it_takes_3_leases(tmp_path):
    (plan, left, never), ctx = h200_plan()
    assert not left and not never and len(plan) <= 3
    assert names(plan[0]) == ["parity", "speed", "main-flax", "main-torch"]  # the headline report, in order
    overhead = device_plan.lease_overhead(ctx.costs)
    assert all(used + overhead <= 540 for _, _, used in plan)
    first = plan[0][1]
    assert all("a part" not in est.note() for _, est in first)  # main-torch whole, by these estimates
    # the headline table: Flax at 1, 16 and 64 lanes, each beside PyTorch at the same lanes (batch 64, highest)
    assert {device_plan.lanes_of(v) for v in HEADLINE if v.startswith("flax")} >= {1, 16, 64}
    assert {device_plan.lanes_of(v) for v in HEADLINE if v.startswith("torch")} >= {1, 16, 64}
    assert not [v for v in HEADLINE if "@" in v or "-tf32" in v or device_plan.OPTIONS.search(v)]
    later = [n for lease in plan[1:] for n in names(lease)]
    assert "speed-variants" in later and "long-flax" in later  # variants and the 300 epochs: later leases
    assert all(names(lease)[0] == "calibrate" for lease in plan[1:])  # each later lease calibrates first
    (without, _, _), _ = h200_plan([s for s in programme(tiny=False) if s.kind != "sweep"])
    assert len(without) <= 2
    from benchmarks.runners.speed import variant_spec
    for step in programme(tiny=False) + programme(tiny=True):  # every speed row one the runner knows
        for item in step.rows:
            variant_spec(item.partition("@")[0])
    r = device_run(tmp_path / "out", "--plan", "--leases", "1", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "lease 1:" in r.stdout and "lease 2:" not in r.stdout and "still to run after them: " in r.stdout
    assert "With every figure at its worst case" in r.stdout
    what_if = device_run(tmp_path / "out", "--plan", "--assume", "parity=174", tmp_path=tmp_path).stdout
    assert re.search(r"\n  parity +174 s  assumed", what_if), what_if


def test_every_figure_names_its_evidence_and_a_measured_one_is_its_rows_value():
    costs = device_plan.load_costs()
    assert costs["evidence"] and all(r.get("machine") and r.get("date") for r in costs["evidence"].values())
    for name, f in costs["figures"].items():
        assert f["kind"] in ("measured", "bound", "derived", "input") and f["how"], name
        assert f["evidence"] and all(e in costs["evidence"] for e in f["evidence"]), name
        if "check" in f:  # the figure as its evidence row gives it
            row = costs["evidence"][f["evidence"][0]]
            assert f["value"] == pytest.approx(row[f["check"]["field"]] * f["check"].get("scale", 1), rel=2e-3), name
    bad = {**costs["figures"]["flax_compile_cold_s"], "value": 2.37}  # control: a figure its row does not give
    row = costs["evidence"][bad["evidence"][0]]
    assert bad["value"] != pytest.approx(row[bad["check"]["field"]], rel=2e-3)
    device = os.path.join(REPO, "benchmarks", "device")
    sources = [open(os.path.join(device, f)).read() for f in os.listdir(device) if f.endswith((".py", ".json"))]
    assert not [s for s in sources if "shared/notes" in s or "../shared" in s]  # nothing outside the repository


def test_estimates_are_built_from_the_figures_and_the_calibration_replaces_the_rates():
    costs = device_plan.load_costs()
    main_flax = by_name("main-flax")
    ctx = device_plan.Context(costs)
    est = device_plan.estimate(main_flax, ctx, device_plan.Lease())
    f = lambda k: device_plan.fig(costs, k)  # noqa: E731
    lane = f("flax_lane_epoch_s") + 40000 / f("flax_eval_img_per_s")  # and its --eval-train pass
    expected = (f("data_decode_s") + f("flax_outside_s") + f("flax_compile_cold_s") + 100 * 16 * lane
                + f("flax_test_eval_s"))
    assert est.seconds == -(-expected // 1) and "[measured]" in est.note() and "[derived]" in est.note()
    warm = device_plan.estimate(main_flax, ctx, device_plan.Lease({("flax", 16, 64, True)}, True))
    assert warm.seconds < est.seconds  # the same program and data later in a lease: from the caches
    resumed = device_plan.estimate(main_flax, ctx, device_plan.Lease(), (60, 0.0))
    assert resumed.seconds < est.seconds and "resuming after epoch 60" in resumed.note()
    # this lease's calibration: Flax twice as slow as the evidence says, so main-flax's epochs take longer
    slow = {"img_per_s": 40000 / (2 * f("flax_lane_epoch_s")), "eval_img_per_s": f("flax_eval_img_per_s")}
    calibrated = device_plan.Context(costs, rates={"flax-scan-matmul-vmap16@64": slow})
    later = device_plan.estimate(main_flax, calibrated, device_plan.Lease())
    assert later.seconds > est.seconds + 40 and "[calibrated]" in later.note()
    torch = by_name("main-torch")
    assert device_plan.estimate(torch, device_plan.Context(costs, engine="cudagraph"), device_plan.Lease()).seconds > \
        device_plan.estimate(torch, ctx, device_plan.Lease()).seconds  # the fallback's measured rate is lower
    # the calibration finds PyTorch's engine slow: its main job no longer fits lease 1's rest, so it runs a part
    slow_torch = device_plan.Context(costs, engine="cudagraph", rates={"torch-cudagraph@64": {
        "img_per_s": 100_000, "eval_img_per_s": 800_000}})
    verdict, est, _, epochs = device_plan.decide(torch, slow_torch, device_plan.Lease(set(), True), 150, {})
    assert verdict == "part" and 0 < epochs < 100 and est.seconds <= 150 and "[calibrated]" in est.note()
    verdict, *_ = device_plan.decide(torch, slow_torch, device_plan.Lease(set(), True), 50, {})
    assert verdict == "wait"  # under a minute left: not worth starting
    row, why = device_plan.speed_figure(costs, "flax-scan-matmul-vmap16-unroll4-tf32", 256)
    assert row is costs["speed_rows"]["flax-scan-matmul-vmap8@64"] and "option not measured" in why
    with pytest.raises(ValueError):
        device_plan.speed_figure(costs, "jax-unknown", 64)


def rows(**rates):
    return {f"{v}@64": {"variant": v, "batch": 64, "img_per_s": r, "eval_img_per_s": 1e6} for v, r in rates.items()}


def test_the_calibration_chooses_pytorchs_engine_and_says_why():
    fast, slow = 600_000, 176_000
    engine, why = calibrate.choose_engine(rows(**{"torch-cudagraph-vmap16": fast, "torch-cudagraph": slow}), {}, False, 64)
    assert engine == "vmap-cudagraph" and "600,000" in why and "176,000" in why
    engine, why = calibrate.choose_engine(rows(**{"torch-cudagraph-vmap16": 90_000, "torch-cudagraph": slow}), {},
                                          False, 64)
    assert engine == "cudagraph" and "cudagraph is faster per image" in why  # slower per image: the faster one
    engine, why = calibrate.choose_engine(rows(**{"torch-cudagraph": slow}),
                                          {"torch-cudagraph-vmap16@64": "failed: capture error"}, False, 64)
    assert engine == "cudagraph" and "capture error" in why
    skipped = {"torch-cudagraph-vmap2@32": "CUDA graphs need a CUDA device", "torch-cudagraph@32": "CUDA graphs need"}
    assert calibrate.choose_engine({}, skipped, True, 32)[0] == "vmap"  # a CPU: the programme's default
    assert calibrate.choose_engine({}, {}, False, 64) is None  # not timed: nothing chosen


@pytest.mark.parametrize("args, says", [(["FILE", "--tiny", "--plan"], "is a file"),
                                        (["out", "--plan", "--continue", "missing.tar.gz"], "no such"),
                                        (["out", "--plan", "--cap", "parity"], "STEP=SECONDS")])
def test_bad_input_is_refused_in_one_line(tmp_path, args, says):
    (tmp_path / "FILE").write_text("x")
    r = device_run(*(tmp_path / a if a in ("FILE", "out", "missing.tar.gz") else a for a in args), tmp_path=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and says in r.stderr, r.stderr
    assert r.stderr.startswith("device_run.sh: error: ") and work_folders_left(tmp_path) == []


def test_what_a_lease_brings_back_and_the_next_resumes_from(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    main_flax = by_name("main-flax")
    seed = work / main_flax.out / "baseline" / "seed_0"
    seed.mkdir(parents=True)
    (seed / "history.json").write_text(json.dumps({"epochs": [{}] * 3}))
    (seed / "best.msgpack").write_bytes(os.urandom(2**20))
    (seed / "evaluation.json").write_text("{}")
    (seed / "events.out.tfevents.1764770000.host.123.0").write_bytes(b"events")
    os.utime(seed / "best.msgpack", (1e9, 1e9))  # the evaluation is newer than its checkpoint: it stays valid
    (work / main_flax.out / "train_state.msgpack").write_bytes(os.urandom(2**20))
    big = work / "sweep" / "batch_64"
    big.mkdir(parents=True)
    (big / "train_state.msgpack").write_bytes(os.urandom(45 * 2**20))  # more than the three parts: stays behind
    cache = work / device_pack.COMPILE_CACHE
    cache.mkdir(parents=True)
    (cache / "program-cache").write_bytes(os.urandom(4096))
    records = [{"name": "main-flax", "status": "cut", "actual_s": 40, "lease": 1},
               {"name": "parity", "status": "cut", "actual_s": 110, "lease": 1}]
    (work / "steps.json").write_text(json.dumps({"programme": "h200", "records": records}))
    out.mkdir()
    device_pack.pack_results(str(work), str(out))
    (out / "state.tar.gz.3").write_bytes(b"an earlier lease's part")
    assert device_pack.pack_state(str(work), str(out), [main_flax.out, "sweep/batch_64"], with_cache=True) == \
        ["sweep/batch_64"]
    assert sorted(os.listdir(out)) == ["results.tar.gz", "state.tar.gz.1"]  # the old part 3 went, after the new
    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
        assert not [n for n in names if n.endswith(".msgpack") or device_pack.CACHE in n or "tfevents" in n]
        assert f"./{main_flax.out}/baseline/seed_0/history.json" in names  # control: the history comes back
    again = tmp_path / "again"
    device_pack.unpack_previous(str(out), str(again))
    assert (again / main_flax.out / "train_state.msgpack").read_bytes() == \
        (work / main_flax.out / "train_state.msgpack").read_bytes()
    assert (again / device_pack.COMPILE_CACHE / "program-cache").exists()  # the compile cache came back
    from benchmarks.folders import evaluation_of
    assert evaluation_of(str(again / main_flax.out / "baseline" / "seed_0"), ".msgpack") == {}  # mtimes kept
    progress = progress_of(programme(tiny=False), records, str(again))
    assert progress == {"main-flax": (3, 0.0), "parity": (0, 110)}  # resumes after epoch 3; parity took >= 110 s
    assert ("flax", 16, 64, True) in compiled_before(programme(tiny=False), records, str(again))
    (again / main_flax.out / "train_state.msgpack").unlink()
    assert progress_of(programme(tiny=False), records, str(again))["main-flax"] == (0, 0.0)  # no state: from epoch 1
    costs = device_plan.load_costs()
    parity = by_name("parity")
    assert device_plan.estimate(parity, device_plan.Context(costs), device_plan.Lease(), (0, 1000)).seconds == 1000


def test_a_finished_run_that_a_later_step_continues_comes_back(tmp_path):
    main_flax = by_name("main-flax")
    (tmp_path / main_flax.out).mkdir(parents=True)
    (tmp_path / main_flax.out / "train_state.msgpack").write_bytes(b"x")
    finished = [{"name": "main-flax", "status": "finished", "actual_s": 100, "lease": 1}]
    assert resume_folders(programme(tiny=False), finished, str(tmp_path)) == [main_flax.out]  # long-flax's source
    done = finished + [{"name": "long-flax", "status": "finished", "actual_s": 100, "lease": 2}]
    assert resume_folders(programme(tiny=False), done, str(tmp_path)) == []  # control: nothing continues it


def test_a_training_step_that_exits_0_short_of_its_epochs_is_not_finished(tmp_path):
    step = by_name("main-flax", tiny=True)  # 2 seeds x 2 models, 2 epochs
    for model in ("baseline", "dropout"):
        for seed in (0, 1):
            lane = tmp_path / step.out / model / f"seed_{seed}"
            lane.mkdir(parents=True)
            (lane / "history.json").write_text(json.dumps({"epochs": [{}] * (1 if seed else 2)}))
    assert missing(step, str(tmp_path)) == "exit 0, but a lane stopped at epoch 1 of 2"
    for lane in (tmp_path / step.out).glob("*/seed_*"):
        (lane / "history.json").write_text(json.dumps({"epochs": [{}] * 2}))
    assert missing(step, str(tmp_path)) == "exit 0, but not every best checkpoint was evaluated"
    for lane in (tmp_path / step.out).glob("*/seed_*"):
        (lane / "evaluation.json").write_text("{}")
    assert missing(step, str(tmp_path)) is None
    (tmp_path / step.out / "dropout" / "seed_1" / "history.json").unlink()
    assert missing(step, str(tmp_path)) == "exit 0, but only 3 of 4 lanes have a history"


def brought_back(out):
    files = [os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs]
    assert len(files) <= 8 and all(f.count(os.sep) <= 2 for f in files), files
    assert sum(os.path.getsize(out / f) for f in files) <= 64 * 2**20
    assert all(os.path.getsize(out / f) <= 16 * 2**20 for f in files)
    with tarfile.open(out / "results.tar.gz") as tar:
        return json.load(tar.extractfile("./steps.json")), set(files)


def budget_for(step_names):
    """A lease just long enough, by the plan's estimates, for these steps of the tiny programme in turn."""
    (plan, _, _), ctx = h200_plan(programme(tiny=True), budget=5000)
    placed = {step.name: est.seconds for step, est in plan[0][1]}
    return sum(placed[n] for n in step_names) + device_plan.lease_overhead(ctx.costs) + 5


@pytest.fixture(scope="module")
def lease1(tmp_path_factory):
    """A tiny lease 1 on the CPU: the headline steps, then long-flax (the lease made just long enough for it)
    stopped 3 s in, at its cap: a forced early cut."""
    tmp_path = tmp_path_factory.mktemp("lease1")
    out = tmp_path / "lease1"
    budget = budget_for(["parity", "speed", "main-flax", "main-torch", "long-flax"])
    r = device_run(out, "--tiny", "--cap", "long-flax=3", tmp_path=tmp_path, timeout=1500, env={"BUDGET": str(budget)})
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp_path, out


@pytest.mark.slow  # a tiny lease 1 (parity, the speed table, both main jobs) on the CPU
def test_a_tiny_lease_1_answers_the_first_screen_for_both_frameworks(lease1):
    tmp_path, out = lease1
    steps, files = brought_back(out)
    assert steps["programme"] == "tiny" and {"REPORT.md", "device_run.log", "results.tar.gz", "speed.md"} <= files
    status = {r["name"]: r["status"] for r in steps["records"]}
    assert [status.get(n) for n in ("parity", "speed", "main-flax", "main-torch")] == ["finished"] * 4, status
    assert status["long-flax"] == "cut"
    torch_record = next(r for r in steps["records"] if r["name"] == "main-torch")
    assert torch_record["engine"] == "vmap"  # no CUDA graph on a CPU: the calibration said so
    short = open(out / "REPORT.md").read().split("## In short")[1].split("\n## ")[0]
    assert "**Is Flax faster?**" in short and "with 2 lanes" in short  # both frameworks, side by side
    assert short.count("flax:") >= 2 and short.count("torch:") >= 2  # the slowdown and the checkpoint, each
    log = open(out / "device_run.log").read()
    assert "main-torch engine: vmap" in log and "plan against actual" in log
    assert work_folders_left(tmp_path) == []


@pytest.mark.slow  # lease 2 of the tiny run above: the cut step resumes, one report covers both leases
def test_a_cut_step_continues_next_lease_and_one_report_covers_both(lease1):
    tmp_path, first = lease1
    second = tmp_path / "lease2"
    plan = device_run(second, "--tiny", "--plan", "--continue", first / "results.tar.gz", tmp_path=tmp_path)
    assert "lease 2:\n  calibrate " in plan.stdout and "\n  long-flax " in plan.stdout, plan.stdout
    r = device_run(second, "--tiny", "--continue", first / "results.tar.gz", tmp_path=tmp_path, timeout=900,
                   env={"BUDGET": "200"})  # room for the calibration and long-flax, not the sweeps
    assert r.returncode == 0, r.stderr[-3000:]
    steps, _ = brought_back(second)
    lines = [(x["name"], x["lease"], x["status"]) for x in steps["records"] if x["name"] in ("long-flax", "calibrate")]
    assert lines == [("long-flax", 1, "cut"), ("calibrate", 2, "finished"), ("long-flax", 2, "finished")], lines
    log = open(second / "device_run.log").read()
    assert all(f"{s}: finished in lease 1" not in log for s in ("long-flax",)) and "main-flax" not in log.split(
        "plan for this lease")[1].split("\n")[0]
    with tarfile.open(second / "results.tar.gz") as tar:  # one report over both leases: both frameworks, whole
        conv = json.load(tar.extractfile("./convergence/convergence.json"))
        long = json.load(tar.extractfile("./convergence-300/flax/baseline/seed_0/history.json"))
        short = json.load(tar.extractfile("./convergence/flax/baseline/seed_0/history.json"))
    assert (conv["flax"]["epochs"], conv["torch"]["epochs"]) == (2, 2)
    assert len(long["epochs"]) == 3 and long["epochs"][:2] == short["epochs"]  # one Flax run, continued
    assert long["compile"]["cache_hits"] > 0  # lease 1's compile cache came back and was used
    report = open(second / "REPORT.md").read()
    rows = [line.split(" | ")[1:5:3] for line in report.splitlines() if line.startswith("| long-flax |")]
    assert rows == [["1", "cut"], ["2", "finished"]] and "| main-torch | 1 |" in report
