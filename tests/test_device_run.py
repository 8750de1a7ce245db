"""The prepared accelerator run: its plan from the measured costs, what a lease brings back, and a
second lease that continues the first (tiny, on the CPU)."""
import json
import os
import subprocess
import sys
import tarfile

import pytest

from benchmarks.device import pack as device_pack
from benchmarks.device import plan as device_plan
from benchmarks.device.run import missing, progress_of
from benchmarks.device.steps import programme
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


def test_tiny_plan_lists_every_step_in_order_and_runs_nothing(tmp_path):
    r = device_run(tmp_path / "out", "--tiny", "--plan", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    names = [s.name for s in programme(tiny=True)]
    positions = [r.stdout.index(f"  {n} ") for n in names]
    assert positions == sorted(positions) and "every step placed" in r.stdout
    assert not (tmp_path / "out").exists() and work_folders_left(tmp_path) == []  # work folder removed


def test_h200_plan_fits_each_lease_and_places_the_whole_programme(tmp_path):
    costs = device_plan.load_costs()
    plan, left, never = device_plan.plan_leases(programme(tiny=False), costs, 540)
    assert not left and not never
    overhead = device_plan.fig(costs, "startup_s") + device_plan.REPORT_RESERVE_S
    assert all(used + overhead <= 540 for _, _, used in plan)
    placed = [step.name for _, steps, _ in plan for step, _, _ in steps]
    assert placed[:2] == ["parity", "main-flax"]  # what a reader needs first
    assert {s.name for s in programme(tiny=False)} == set(placed)
    from benchmarks.runners.speed import variant_spec
    for step in programme(tiny=False):  # every speed variant is one the runner knows (a typo fails here, not there)
        for variant in step.rows if step.kind == "speed" else []:
            variant_spec(variant)
    # a step longer than any lease (PyTorch's main job at vmap's measured epoch) runs in parts that sum to it
    parts = [note for _, steps, _ in plan for step, _, note in steps if step.name == "main-torch"]
    assert len(parts) == 2 and "a part, cut at its cap on purpose" in parts[0] and "resumes after epoch" in parts[1]
    r = device_run(tmp_path / "out", "--plan", "--leases", "1", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "lease 1:" in r.stdout and "lease 2:" not in r.stdout and "still to run after them: " in r.stdout
    what_if = device_run(tmp_path / "out", "--plan", "--assume", "parity=90", tmp_path=tmp_path).stdout
    assert "parity                  90 s  assumed" in what_if


def test_estimates_are_built_from_the_measured_figures():
    costs = device_plan.load_costs()
    main_flax = next(s for s in programme(tiny=False) if s.name == "main-flax")
    s, note = device_plan.estimate(main_flax, costs, device_plan.Lease())
    f = lambda k: device_plan.fig(costs, k)  # noqa: E731
    eval_train = 40000 * 16 / costs["lanes_rates"]["8"]["eval_img_per_s"]  # its --eval-train pass, an epoch
    expected = (f("data_decode_s") + 2 * f("flax_outside_epochs_s") + f("flax_compile_cold_s") * 4 / 3
                + 100 * (f("flax_epoch_16_lanes_s") + eval_train))
    assert s == -(-expected // 1) and "compile cold" in note and "--eval-train" in note
    warm, _ = device_plan.estimate(main_flax, costs, device_plan.Lease({("flax", 16, 64)}, True))
    assert warm < s  # the same program and data later in a lease: from the caches
    resumed, note = device_plan.estimate(main_flax, costs, device_plan.Lease(), done_epochs=60)
    assert resumed < s and "resumes after epoch 60" in note
    row, why = device_plan.speed_figure(costs, "torch-cudagraph-vmap64", 64)
    assert row is costs["speed_rows"]["torch-vmap16@64"] and "upper bound" in why
    row, why = device_plan.speed_figure(costs, "flax-scan-matmul-vmap16-unroll4-tf32", 256)
    assert row is costs["speed_rows"]["flax-scan-matmul-vmap8@64"] and "option not measured" in why
    assert device_plan.speed_figure(costs, "torch-cudagraph", 64)[0] is costs["speed_rows"]["torch-cudagraph@64"]
    with pytest.raises(ValueError):
        device_plan.speed_figure(costs, "jax-unknown", 64)
    assert all(v["source"] for v in costs["figures"].values())


@pytest.mark.parametrize("args, says", [(["FILE", "--tiny", "--plan"], "is a file"),
                                        (["out", "--plan", "--continue", "missing.tar.gz"], "no such"),
                                        (["out", "--plan", "--cap", "parity"], "STEP=SECONDS")])
def test_bad_input_is_refused_in_one_line(tmp_path, args, says):
    (tmp_path / "FILE").write_text("x")
    r = device_run(*(tmp_path / a if a in ("FILE", "out", "missing.tar.gz") else a for a in args), tmp_path=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and says in r.stderr, r.stderr
    assert r.stderr.startswith("device_run.sh: error: ") and work_folders_left(tmp_path) == []


def test_a_cut_training_step_resumes_from_the_state_that_came_back(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    main_flax = next(s for s in programme(tiny=False) if s.name == "main-flax")
    seed = work / main_flax.out / "baseline" / "seed_0"
    seed.mkdir(parents=True)
    (seed / "history.json").write_text(json.dumps({"epochs": [{}] * 3}))
    (seed / "best.msgpack").write_bytes(os.urandom(2**20))
    (work / main_flax.out / "train_state.msgpack").write_bytes(os.urandom(2**20))
    big = work / "sweep" / "batch_64"
    big.mkdir(parents=True)
    (big / "train_state.msgpack").write_bytes(os.urandom(31 * 2**20))  # more than two parts: stays behind
    records = [{"name": "main-flax", "status": "cut", "actual_s": 40, "lease": 1},
               {"name": "parity", "status": "cut", "actual_s": 110, "lease": 1}]
    (work / "steps.json").write_text(json.dumps({"records": records}))
    out.mkdir()
    device_pack.pack_results(str(work), str(out))
    assert device_pack.pack_state(str(work), str(out), [main_flax.out, "sweep/batch_64"]) == ["sweep/batch_64"]
    parts = sorted(os.listdir(out))
    assert parts == ["results.tar.gz", "state.tar.gz.1"] and os.path.getsize(out / parts[1]) <= 15 * 2**20
    with tarfile.open(out / "results.tar.gz") as tar:
        assert not [n for n in tar.getnames() if n.endswith(".msgpack")]
    again = tmp_path / "again"
    device_pack.unpack_previous(str(out), str(again))
    assert (again / main_flax.out / "train_state.msgpack").read_bytes() == \
        (work / main_flax.out / "train_state.msgpack").read_bytes()
    progress = progress_of(programme(tiny=False), records, str(again))
    assert progress == {"main-flax": (3, 0.0), "parity": (0, 110)}  # resumes after epoch 3; parity took >= 110 s
    (again / main_flax.out / "train_state.msgpack").unlink()
    assert progress_of(programme(tiny=False), records, str(again))["main-flax"] == (0, 0.0)  # no state: from epoch 1
    costs = device_plan.load_costs()
    parity = programme(tiny=False)[0]
    assert device_plan.estimate(parity, costs, device_plan.Lease(), ran_s=1000)[0] == 1000


def test_a_training_step_that_exits_0_short_of_its_epochs_is_not_finished(tmp_path):
    step = next(s for s in programme(tiny=True) if s.name == "main-flax")  # 2 seeds x 2 models, 2 epochs
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


@pytest.mark.slow  # every step of the prepared GPU run, tiny, on the CPU; then a second lease continuing it
def test_device_run_tiny_brings_back_at_most_8_files_and_a_second_lease_continues_it(tmp_path):
    first, second = tmp_path / "lease1", tmp_path / "lease2"
    # main-flax stopped at a 2 s cap: it must be recorded as cut, and run again by the next lease
    r = device_run(first, "--tiny", "--cap", "main-flax=2", tmp_path=tmp_path, timeout=1200)
    assert r.returncode == 0, r.stderr[-2000:]
    files = [os.path.relpath(os.path.join(d, f), first) for d, _, fs in os.walk(first) for f in fs]
    assert len(files) <= 8 and all(f.count(os.sep) <= 2 for f in files), files
    assert {"REPORT.md", "device_run.log", "results.tar.gz"} <= set(files)
    assert all(os.path.getsize(first / f) <= 16 * 2**20 for f in files)
    with tarfile.open(first / "results.tar.gz") as tar:
        records = json.load(tar.extractfile("./steps.json"))["records"]
    status = {r["name"]: r["status"] for r in records}
    assert status.pop("main-flax") == "cut" and set(status.values()) == {"finished"}, status
    report = open(first / "REPORT.md").read()
    assert "| main-flax | 1 |" in report and "| cut |" in report and "| a1 |" in report
    speed = open(first / "speed.md").read()
    assert "| dropout | 32 | 2 | highest | flax-scan-matmul-vmap2 |" in speed and "(torch-vmap2)" in speed
    assert work_folders_left(tmp_path) == []  # the work folder is removed

    plan = device_run(second, "--tiny", "--plan", "--continue", first / "results.tar.gz", tmp_path=tmp_path).stdout
    assert "lease 2:\n  main-flax " in plan and "Kept from earlier leases (finished, not run again): parity" in plan
    r = device_run(second, "--tiny", "--continue", first / "results.tar.gz", tmp_path=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    log = open(second / "device_run.log").read()
    assert all(f"{s}: finished in lease 1" in log for s in status), log
    assert "main-flax: exit 0, finished" in log
    report = open(second / "REPORT.md").read()
    lines = [line for line in report.splitlines() if line.startswith("| main-flax |")]
    assert [line.split(" | ")[1:5:3] for line in lines] == [["1", "cut"], ["2", "finished"]]
    with tarfile.open(second / "results.tar.gz") as tar:  # one report over both leases: both frameworks, whole
        conv = json.load(tar.extractfile("./convergence/convergence.json"))
    assert (conv["flax"]["epochs"], conv["torch"]["epochs"]) == (2, 2) and report.count("| a1 |") == 2
