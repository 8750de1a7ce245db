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
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchmarks.device import cli
from benchmarks.device import ledger
from benchmarks.device import pack as device_pack
from benchmarks.device import plan as device_plan
from benchmarks.device.ledger import last_status
from benchmarks.device.steps import programme
from benchmarks.folders import epochs_done

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILL_GRACE_S = 15  # SIGTERM first, so training saves its last epoch; SIGKILL this much later
POLL_S = 0.2


class StopRequest:
    """The first SIGTERM, SIGINT or SIGHUP this run got: the step running is stopped as at its cap (it saves
    its last epoch), the lease packs what it has, and the run exits 128 + the signal."""
    signum = None

    @classmethod
    def handle(cls, signum, frame):
        if cls.signum is None:
            cls.signum = signum

    @classmethod
    def name(cls):
        return signal.Signals(cls.signum).name


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
            done = ledger.epochs_in(work, step.out)
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
    """(rc, seconds, why it was stopped) of one step: at `cap` seconds, or on a stop request, it gets
    SIGTERM (training saves its last epoch), then SIGKILL KILL_GRACE_S later; rc is None if it was stopped."""
    t0 = time.monotonic()
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, *argv], cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        stopped, term_at = None, None
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if term_at is None and (now - t0 >= cap or StopRequest.signum):
                    stopped = f"signal {StopRequest.name()}" if StopRequest.signum else "cap"
                    os.killpg(proc.pid, signal.SIGTERM)
                    term_at = now
                if term_at is not None and now - term_at >= KILL_GRACE_S:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                time.sleep(POLL_S)
        except BaseException:  # never leave a step running
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return (None if stopped else proc.returncode), round(time.monotonic() - t0, 1), stopped


def missing(step, work):
    """Why a training step that exited 0 is not finished (its runner summarises what it has after a
    failed or stopped training run and exits 0), or None: every lane has all its epochs and, for the
    main jobs, its test evaluation."""
    if not step.out:
        return None
    files = [(d, fs) for d, _, fs in os.walk(os.path.join(work, step.out)) if "history.json" in fs]
    epochs = [epochs_done(os.path.join(d, "history.json")) for d, _ in files]
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
    rc, took, stopped = run_capped(argv, os.path.join(work, "report.log"), device_plan.REPORT_RESERVE_S, env, work)
    log(f"report: exit {rc} ({took} s)" if not stopped else f"report: stopped by its {stopped} ({took} s)")


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
        ledger.save(work, records, a.tiny)

    for step in steps:
        if StopRequest.signum:
            break
        r = last_status(records).get(step.name)
        if r and r["status"] == "finished":
            log(f"{step.name}: finished in lease {r['lease']} ({r.get('machine')}, {r.get('date')}), kept")
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
        rc, took, stopped = run_capped(command(step, records), os.path.join(work, f"{step.name}.log"), cap, env,
                                       REPO if step.kind == "parity" else work)
        lease = after
        status = "finished" if rc == 0 else "cut" if stopped else "failed"
        detail = {"finished": "", "failed": f"exit {rc}",
                  "cut": f"stopped by {stopped}" if stopped != "cap" else f"stopped at its cap of {cap} s" + (
                      "; a part on purpose, resumed next lease" if verdict == "part" else "")}[status]
        short = missing(step, work) if status == "finished" else None
        if short:
            status, detail = "failed", short
        log(f"{step.name}: exit {rc if not stopped else stopped}, {status} ({took} s)" + (f"; {detail}" if detail else ""))
        record(step, planned_s=est, cap_s=cap, actual_s=took, status=status, detail=detail, estimate_note=note)
        bring_back(work, out, steps, records, log)
    if StopRequest.signum:  # no report: a stopped lease has little time left; the next lease rebuilds it
        bring_back(work, out, steps, records, log)
        log(f"stopped by {StopRequest.name()}: packed what it has; continue it with --continue {a.out}")
        raise SystemExit(128 + StopRequest.signum)
    report(work, log, env, f"{machine}, lease {lease_no}" + (f" (and {lease_no - 1} earlier)" if lease_no > 1 else ""))
    bring_back(work, out, steps, records, log)
    log(f"done in {time.monotonic() - start:.0f} s; files: {' '.join(sorted(os.listdir(out)))}")


def link_data(work, data):
    """--data as the steps see it: the data file linked into the work folder under its own name, so
    commands and run.json name no folder of this machine (the link is not packed)."""
    if data.startswith("synthetic:"):
        return data
    name = os.path.basename(os.path.normpath(data))
    os.symlink(data, os.path.join(work, name))
    return name


def main(argv=None):
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, StopRequest.handle)
    a = cli.parse(argv, __doc__.splitlines()[0])
    costs = with_assumptions(device_plan.load_costs(), a.assume)
    budget = cli.budget(a.tiny, device_plan.fig(costs, "startup_s") + device_plan.REPORT_RESERVE_S)
    data = None if a.plan else cli.data(a.tiny)
    if not a.plan:
        cli.check_fresh_out(a.out, a.prev)
    work = tempfile.mkdtemp(prefix="device_run.")
    try:
        records = []
        if a.prev:
            device_pack.unpack_previous(a.prev, work)
            records = ledger.load(work, a.tiny, a.prev)
        progress_of(programme(a.tiny), records, work)  # a cut step's files that cannot be resumed: said now
        if a.plan:
            show_plan(a, programme(a.tiny), costs, budget, records, work)
            return
        os.makedirs(a.out, exist_ok=True)
        run(a, programme(a.tiny, link_data(work, data)), costs, budget, work, records)
    except cli.BadInput as e:
        cli.fail(str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
