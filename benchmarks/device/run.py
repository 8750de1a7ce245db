"""The one prepared accelerator run (benchmarks/device_run.sh is its wrapper).

  bash benchmarks/device_run.sh OUT [--tiny] [--plan [--leases N]] [--continue PREV] [--cap STEP=S] [--assume STEP=S]

Runs the programme of benchmarks.device.steps in order inside the lease's budget ($BUDGET, default
540 s; --tiny 1200), starting only the steps whose estimate (benchmarks.device.plan) fits in what is
left, each capped, and records every step in steps.json: name, planned and actual seconds, cap,
status (finished; cut: stopped at its cap; skipped: not started, it did not fit; failed), lease,
machine and date. --continue PREV keeps the finished steps of earlier leases, resumes the cut
training steps whose state came back, runs the rest, and rebuilds one REPORT.md over all leases.
--plan prints the steps each lease would run with their estimates, running nothing. --cap sets a
step's cap (to force a cut in a test), --assume a step's estimate (a what-if, named in the plan).
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchmarks.device import pack as device_pack
from benchmarks.device import plan as device_plan
from benchmarks.device.steps import programme

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILL_GRACE_S = 15  # SIGTERM first, so training saves its last epoch; SIGKILL this much later
PROG = "device_run.sh"


def fail(message):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        fail(message)


def pairs(text):
    """'a=1,b=2' -> {'a': 1.0, 'b': 2.0}"""
    try:
        return {k: float(v) for k, v in (item.split("=") for item in text.split(",") if item)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STEP=SECONDS[,STEP=SECONDS], got {text!r}")


def parse(argv):
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("out", metavar="OUT")
    p.add_argument("--tiny", action="store_true", help="the same steps, small, on a CPU")
    p.add_argument("--plan", action="store_true", help="print the steps each lease would run; run nothing")
    p.add_argument("--leases", type=int, default=None, help="with --plan: plan this many leases")
    p.add_argument("--continue", dest="prev", default=None, metavar="PREV",
                   help="an earlier lease's results.tar.gz (state parts beside it) or its folder")
    p.add_argument("--cap", type=pairs, default={}, help="STEP=SECONDS: that step's cap")
    p.add_argument("--assume", type=pairs, default={}, help="STEP=SECONDS: that step's estimate (a what-if)")
    a = p.parse_args(argv)
    if os.path.exists(a.out) and not os.path.isdir(a.out):
        fail(f"OUT {a.out} is a file; give a folder")
    return a


def last_status(records):
    return {r["name"]: r for r in records}  # later records replace earlier ones


def progress_of(steps, records, work):
    """(epochs done, seconds run) of each step that did not finish: a training step resumes after its
    last saved epoch when its train state is here; any other cut step took at least the time it ran."""
    last, progress = last_status(records), {}
    for step in steps:
        r = last.get(step.name)
        if not r or r["status"] == "finished":
            continue
        done = 0
        if step.out and any("train_state" in f for f in device_pack.resume_files(work, step.out)):
            lengths = [len(json.load(open(os.path.join(d, f)))["epochs"])
                       for d, _, fs in os.walk(os.path.join(work, step.out)) for f in fs if f == "history.json"]
            done = min(lengths, default=0)
        progress[step.name] = (done, r["actual_s"] if r["status"] == "cut" and not step.out else 0.0)
    return progress


def with_assumptions(costs, assume):
    """Estimates a what-if gives: device_plan.estimate reads them before the measured figures."""
    return {**costs, "assume": assume}


def show_plan(a, steps, costs, budget, records, work):
    done = [n for n, r in last_status(records).items() if r["status"] == "finished"]
    todo = [s for s in steps if s.name not in done]
    placed = device_plan.plan_leases(todo, costs, budget, a.leases, progress_of(steps, records, work))
    print(("tiny programme (CPU)" if a.tiny else "H200 programme") + (
        f"; what-if estimates: {a.assume}" if a.assume else ""))
    first = max((r["lease"] for r in records), default=0) + 1
    print(device_plan.format_plan(placed, costs, budget, kept=done, first=first))


def run_capped(argv, log_path, cap, env, cwd):
    """rc and seconds of one step, stopped at `cap` seconds (rc None then)."""
    t0 = time.monotonic()
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, *argv], cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(cap, 1))
        except BaseException as e:  # the cap, or this run itself stopped: never leave the step running
            if not isinstance(e, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                raise
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = None
    return rc, round(time.monotonic() - t0, 1)


def missing(step, work):
    """Why a training step that exited 0 is not finished (its runner summarises what it has after a
    failed or stopped training run and exits 0), or None: every lane has all its epochs and, for the
    main jobs, its test evaluation."""
    if not step.out:
        return None
    files = [(d, fs) for d, _, fs in os.walk(os.path.join(work, step.out)) if "history.json" in fs]
    epochs = [len(json.load(open(os.path.join(d, "history.json")))["epochs"]) for d, _ in files]
    if len(files) < step.lanes:
        return f"exit 0, but only {len(files)} of {step.lanes} lanes have a history"
    if min(epochs) < step.epochs:
        return f"exit 0, but a lane stopped at epoch {min(epochs)} of {step.epochs}"
    if step.kind == "train" and not all("evaluation.json" in fs for _, fs in files):
        return "exit 0, but not every best checkpoint was evaluated"
    return None


def probe_machine(log):
    r = subprocess.run([sys.executable, "-c", "import os, jax, torch; d = jax.devices()[0]; print(d.device_kind, "
                        "'|', jax.__version__, '| torch', torch.__version__, '|', os.cpu_count(), 'cores')"],
                       capture_output=True, text=True, cwd=REPO)
    line = r.stdout.strip() or "unknown (" + (r.stderr.strip().splitlines() or ["no output"])[-1] + ")"
    log(f"machine: {line}")
    return line.split(" | ")[0] + ", " + line.split(" | ")[-1] if " | " in line else line


def command(step, records):
    """A sweep step also names the batch sizes finished before it (reused, not trained), so its
    sweep.json covers every finished batch size."""
    if step.kind != "sweep":
        return step.argv
    last = last_status(records)
    before = [r["batch"] for r in records if r["name"].startswith("sweep-b") and last[r["name"]] is r
              and r["status"] == "finished" and r["batch"] != step.batch]
    argv = list(step.argv)
    i = argv.index("--batches") + 1
    argv[i] = ",".join(map(str, [*before, step.batch]))
    return argv


def report(work, log, env, title):
    if not os.path.isfile(os.path.join(work, "convergence", "convergence.json")):
        log("report: skipped, no training step has finished an epoch yet")
        return
    argv = ["-m", "benchmarks.report", "--convergence", "convergence", "--out", ".", "--title", title,
            "--steps", "steps.json"]
    for flag, folder, name in (("--speed", "speed", "speed.json"), ("--sweep", "sweep", "sweep.json"),
                               ("--wall", "lanes", "wall.json")):
        if os.path.isfile(os.path.join(work, folder, name)):
            argv += [flag, folder]
    rc, took = run_capped(argv, os.path.join(work, "report.log"), device_plan.REPORT_RESERVE_S, env, work)
    log(f"report: exit {rc} ({took} s)")


def bring_back(work, out, steps, records, log):
    """The tables a reader wants first, results.tar.gz, and the state the cut training steps resume from."""
    for src, dst in (("REPORT.md", "REPORT.md"), ("parity.log", "parity.log"), ("speed/speed.md", "speed.md"),
                     ("lanes/wall.md", "lanes.md")):
        if os.path.isfile(os.path.join(work, src)):
            shutil.copy(os.path.join(work, src), os.path.join(out, dst))
    device_pack.pack_results(work, out)
    last = last_status(records)
    cut = [s.out for s in steps if s.out and s.name in last and last[s.name]["status"] != "finished"]
    for folder in device_pack.pack_state(work, out, cut):
        log(f"state of {folder} is too large to bring back: that step starts again next lease")


def run(a, steps, costs, budget, work, records):
    start, out = time.monotonic(), os.path.abspath(a.out)

    def log(line):
        line = f"[device_run {time.strftime('%H:%M:%S')} +{time.monotonic() - start:.0f}s] {line}"
        print(line, flush=True)
        with open(os.path.join(out, "device_run.log"), "a") as f:
            f.write(line + "\n")

    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if a.tiny:
        env["LENET_COMPILE_CACHE"] = os.path.join(work, "jax-cache")
    lease_no = max((r["lease"] for r in records), default=0) + 1
    log(f"lease {lease_no}: {'tiny, cpu' if a.tiny else 'gpu'}, budget {budget} s"
        + (f", continuing {len(last_status(records))} steps recorded earlier" if records else ""))
    machine = probe_machine(log)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    progress = progress_of(steps, records, work)
    usable = budget - device_plan.fig(costs, "startup_s") - device_plan.REPORT_RESERVE_S
    lease = device_plan.Lease()

    def record(step, **fields):
        records.append({"name": step.name, "kind": step.kind, "batch": step.batch, "lease": lease_no,
                        "machine": machine, "date": date, **fields})
        with open(os.path.join(work, "steps.json"), "w") as f:
            json.dump({"records": records}, f, indent=1)

    for step in steps:
        r = last_status(records).get(step.name)
        if r and r["status"] == "finished":
            log(f"{step.name}: finished in lease {r['lease']} ({r['machine']}, {r['date']}), kept")
            continue
        left = budget - (time.monotonic() - start) - device_plan.REPORT_RESERVE_S
        verdict, est, note, after, epochs = device_plan.decide(step, costs, lease, left, usable, progress)
        if verdict == "wait":
            log(f"{step.name}: skipped, needs {est} s and {left:.0f} s are left: next lease")
            record(step, planned_s=est, cap_s=0, actual_s=0, status="skipped",
                   detail=f"not started: needs {est} s, {left:.0f} s left")
            continue
        cap = device_plan.cap_for(step, est, left) if verdict == "run" else left - KILL_GRACE_S
        cap = int(a.cap.get(step.name, cap))
        part = f", a part up to epoch {epochs}" if verdict == "part" else ""
        log(f"{step.name}: start (estimate {est} s, cap {cap} s{part})")
        rc, took = run_capped(command(step, records), os.path.join(work, f"{step.name}.log"), cap, env,
                              REPO if step.kind == "parity" else work)
        lease = after
        status = "finished" if rc == 0 else "cut" if rc is None else "failed"
        detail = {"finished": "", "cut": f"stopped at its cap of {cap} s" + (
            "; a part on purpose, resumed next lease" if verdict == "part" else ""), "failed": f"exit {rc}"}[status]
        short = missing(step, work) if status == "finished" else None
        if short:
            status, detail = "failed", short
        log(f"{step.name}: exit {'cap' if rc is None else rc}, {status} ({took} s)" + (f"; {detail}" if detail else ""))
        record(step, planned_s=est, cap_s=cap, actual_s=took, status=status, detail=detail, estimate_note=note)
        bring_back(work, out, steps, records, log)
    report(work, log, env, f"{machine}, lease {lease_no}" + (f" (and {lease_no - 1} earlier)" if lease_no > 1 else ""))
    bring_back(work, out, steps, records, log)
    log(f"done in {time.monotonic() - start:.0f} s; files: {' '.join(sorted(os.listdir(out)))}")


def data_in(work, tiny):
    """--data as the steps see it: the data file linked into the work folder under its own name, so
    commands and run.json name no folder of this machine (the link is not packed)."""
    if tiny:
        return "synthetic:600"
    data = os.environ.get("CIFAR10") or fail("set CIFAR10 to the data (e.g. data/cifar10-jpeg.tar.gz)")
    if not os.path.exists(data):
        fail(f"CIFAR10={data}: no such file or folder")
    name = os.path.basename(os.path.normpath(data))
    os.symlink(os.path.abspath(data), os.path.join(work, name))
    return name


def stop(signum, frame):
    sys.exit(128 + signum)  # through the finally blocks: the step is stopped and the work folder removed


def main(argv=None):
    signal.signal(signal.SIGTERM, stop)
    a = parse(argv)
    budget = int(os.environ.get("BUDGET", 1200 if a.tiny else 540))
    costs = with_assumptions(device_plan.load_costs(), a.assume)
    work = tempfile.mkdtemp(prefix="device_run.")
    try:
        records = []
        if a.prev:
            try:
                device_pack.unpack_previous(a.prev, work)
                records = json.load(open(os.path.join(work, "steps.json")))["records"]
            except (OSError, ValueError, KeyError) as e:
                fail(str(e).splitlines()[0] if str(e) else f"cannot read --continue {a.prev}")
        if a.plan:
            show_plan(a, programme(a.tiny), costs, budget, records, work)
            return
        os.makedirs(a.out, exist_ok=True)
        run(a, programme(a.tiny, data_in(work, a.tiny)), costs, budget, work, records)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
