"""The one prepared accelerator run (benchmarks/device_run.sh is its wrapper).

  bash benchmarks/device_run.sh OUT [--tiny] [--plan [--leases N]] [--continue PREV] [--cap STEP=S] [--assume STEP=S]

Runs the programme of benchmarks.device.steps in order inside the lease's budget ($BUDGET, default 540 s),
starting only the steps whose estimate (benchmarks.device.plan) fits in what is left, each capped. A lease
first calibrates: the headline speed step's rows (lease 1) or a short calibration step time the engines the
lease trains with; the rest of the lease is planned with those rates, and they choose PyTorch's engine for
its main job. Every step is recorded in steps.json (name, estimated and actual seconds, cap, status:
finished; cut: stopped at its cap or by a signal; skipped: not started, it did not fit; failed), and the log
ends with the lease's plan against what happened. --tiny runs the same steps, small, on a CPU, planned as
the H200's (a tiny lease holds the steps a GPU lease would; each step counts its estimate, not the CPU's
seconds). --continue PREV keeps the finished steps of earlier leases, resumes the cut training steps whose
state came back, reuses the compile cache that came back, runs the rest, and rebuilds one REPORT.md over
all leases. --plan prints the steps each lease would run with their estimates, running nothing. --cap sets
a step's cap (to force a cut in a test), --assume a step's estimate (a what-if, named in the plan).
"""
import datetime
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchmarks.device import calibrate, cli, ledger
from benchmarks.device import pack as device_pack
from benchmarks.device import plan as device_plan
from benchmarks.device.ledger import last_status
from benchmarks.device.steps import TORCH_ENGINE, programme, sized
from benchmarks.folders import epochs_done

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILL_GRACE_S = 15  # SIGTERM first, so training saves its last epoch; SIGKILL this much later
POLL_S = 0.2
TINY_CAP_S = 400  # --tiny: a step's cap on a shared CPU (its estimate is the H200's)
TRAINING = ("train", "extend", "sweep")


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


class Clock:
    """Seconds left for steps in this lease: the wall clock on a GPU; with --tiny the plan's own (each step
    counts its estimate), so a tiny lease holds the steps a GPU lease would, whatever the CPU's speed."""

    def __init__(self, budget, tiny, costs):
        self.start, self.budget, self.tiny, self.spent = time.monotonic(), budget, tiny, 0
        self.startup = device_plan.fig(costs, "startup_s")

    def elapsed(self):
        return time.monotonic() - self.start

    def left(self):
        used = self.startup + self.spent if self.tiny else self.elapsed()
        return self.budget - used - device_plan.REPORT_RESERVE_S

    def spend(self, estimate_s):
        self.spent += estimate_s


def progress_of(steps, records, work):
    """(epochs done, seconds run) of each step that did not finish, in the epochs of the step it is planned
    as: a training step resumes after its last saved epoch when its train state is here; any other cut
    step took at least the time it ran."""
    last, progress = last_status(records), {}
    for step in steps:
        r = last.get(step.name)
        if not r or r["status"] == "finished":
            continue
        done = 0
        if step.out and any("train_state" in f for f in device_pack.resume_files(work, step.out)):
            done = ledger.epochs_in(work, step.out) * sized(step).epochs // step.epochs
        progress[step.name] = (done, r["actual_s"] if r["status"] == "cut" and not step.out else 0.0)
    return progress


def compiled_before(steps, records, work):
    """Programs an earlier lease compiled, when its compile cache came back: they load, not compile."""
    if not device_pack.cache_files(work):
        return set()
    ran = {r["name"] for r in records if r["status"] in ("finished", "cut")}
    keys = set()
    for step in (sized(s) for s in steps if s.name in ran):
        if step.kind in TRAINING and step.framework == "flax":
            keys.add(("flax", step.lanes, step.batch, step.eval_train))
        keys |= {("row", *device_plan.row_config(r, step.batch)) for r in step.rows}
    return keys


def chosen_engine(records):
    """PyTorch's main-job engine an earlier lease chose (a cut main job resumes on it), or None."""
    return next((r["engine"] for r in reversed(records) if r["name"] == "main-torch" and r.get("engine")), None)


def show_plan(a, ctx, records, work):
    steps = programme(a.tiny)
    done = [n for n, r in last_status(records).items() if r["status"] == "finished"]
    todo = [s for s in steps if s.name not in done]
    progress = progress_of(steps, records, work)
    placed = device_plan.plan_leases(todo, ctx, ctx.budget, a.leases, progress, done)
    print(("tiny programme (CPU), planned as the H200's" if a.tiny else "H200 programme") + (
        f"; what-if estimates: {a.assume}" if a.assume else ""))
    first = max((r["lease"] for r in records), default=0) + 1
    print(device_plan.format_plan(placed, ctx, ctx.budget, kept=done, first=first))
    worst = device_plan.Context(ctx.costs, ctx.budget, worst=True, assume=ctx.assume, cached=ctx.cached)
    plan, left, never = device_plan.plan_leases(todo, worst, ctx.budget, a.leases, progress, done)
    total = sum(used + device_plan.lease_overhead(ctx.costs) for _, _, used in plan)
    print(f"With every figure at its worst case (costs.json 'worst'): {len(plan)} lease(s), {total} s"
          + (f"; still to run after them: {', '.join(s.name for s in left)}" if left else "")
          + (f"; fitting no lease: {', '.join(s.name for s in never)}" if never else ""))


def run_capped(argv, log_path, cap, env, cwd):
    """(rc, seconds, why it was stopped) of one step: at `cap` seconds, or on a stop request, its process
    group gets SIGTERM (training saves its last epoch), then SIGKILL once KILL_GRACE_S have passed; rc is
    None if it was stopped. A step leaves no process behind."""
    t0 = time.monotonic()
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, *argv], cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        stopped, term_at = None, None
        try:
            while proc.poll() is None or (term_at is not None and group_alive(proc.pid)):
                now = time.monotonic()
                if term_at is None and (now - t0 >= cap or StopRequest.signum):
                    stopped = f"signal {StopRequest.name()}" if StopRequest.signum else "cap"
                    signal_group(proc.pid, signal.SIGTERM)
                    term_at = now
                if term_at is not None and now - term_at >= KILL_GRACE_S:
                    break
                time.sleep(POLL_S)
        finally:  # whatever is left of the step (a child still saving past the grace, a stray process)
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    return (None if stopped else proc.returncode), round(time.monotonic() - t0, 1), stopped


def signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


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
    if step.kind in ("train", "extend") and not all("evaluation.json" in fs for _, fs in files):
        return "exit 0, but not every best checkpoint was evaluated"
    return None


def probe_machine(tiny):
    """The machine in a few words, without importing a framework (seconds on a fresh machine): the GPU's
    name as nvidia-smi gives it, the versions as installed."""
    gpu = ""
    if not tiny and shutil.which("nvidia-smi"):
        r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
        gpu = (r.stdout.strip().splitlines() or [""])[0]
    versions = []
    for name in ("jax", "torch"):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} missing")
    device = gpu or "cpu"
    return f"{device}, {os.cpu_count()} cores", f"{device} | {' | '.join(versions)} | {os.cpu_count()} cores"


def command(step, records, engine, work):
    """A step's command as this lease runs it: a sweep also names the batch sizes finished before it
    (reused, not trained), so its sweep.json covers every finished batch size, and takes the main runs'
    lanes only once they are there; PyTorch's main job trains on the engine the calibration chose."""
    argv = list(step.argv)
    if step.kind == "sweep":
        last = last_status(records)
        before = [r["batch"] for r in records if r["name"].startswith("sweep-b") and last[r["name"]] is r
                  and r["status"] == "finished" and r["batch"] != step.batch]
        argv[argv.index("--batches") + 1] = ",".join(map(str, [*before, step.batch]))
        reuse = argv.index("--reuse")
        if not os.path.isfile(os.path.join(work, argv[reuse + 1], "convergence.json")):
            del argv[reuse:reuse + 2]
    if step.name == "main-torch" and engine:
        i = argv.index("--torch-args") + 1
        argv[i] = argv[i].replace(f"--engine {TORCH_ENGINE[step.tiny]}", f"--engine {engine}")
    return argv


def report(work, log, env, title):
    if not os.path.isfile(os.path.join(work, "convergence", "convergence.json")):
        log("report: skipped, no training step has finished an epoch yet")
        return
    argv = ["-m", "benchmarks.report", "--convergence", "convergence", "--out", ".", "--title", title,
            "--steps", "steps.json"]
    for flag, folder, name in (("--speed", "speed", "speed.json"), ("--sweep", "sweep", "sweep.json")):
        if os.path.isfile(os.path.join(work, folder, name)):
            argv += [flag, folder]
    rc, took, stopped = run_capped(argv, os.path.join(work, "report.log"), 60, env, work)
    log(f"report: exit {rc} ({took} s)" if not stopped else f"report: stopped by its {stopped} ({took} s)")


def resume_folders(steps, records, work):
    """The training folders a later lease resumes from: each unfinished step's own, or, for one not begun
    that continues another's run (long-flax), that run's."""
    last = last_status(records)
    finished = {n for n, r in last.items() if r["status"] == "finished"}
    folders = []
    for s in steps:
        if not s.out or s.name in finished:
            continue
        if device_pack.resume_files(work, s.out):
            folders.append(s.out)
        elif s.source and s.after in finished:
            folders.append(s.source)
    return folders


def bring_back(work, out, steps, records, log, final=False):
    """The tables a reader wants first, results.tar.gz, and the state the next lease resumes from (at the
    end of the lease, or when stopped, with the compile cache)."""
    for src, dst in (("REPORT.md", "REPORT.md"), ("parity.log", "parity.log"), ("speed/speed.md", "speed.md")):
        if os.path.isfile(os.path.join(work, src)):
            shutil.copy(os.path.join(work, src), os.path.join(out, dst))
    device_pack.pack_results(work, out)
    for folder in device_pack.pack_state(work, out, resume_folders(steps, records, work), with_cache=final):
        log(f"state of {folder} is too large to bring back: that step starts again next lease")


class LeaseRun:
    """One lease's run: its clock, the plan it started with, the context its estimates use (calibrated as
    it goes), what it has cached, and the records it adds to steps.json."""

    def __init__(self, a, costs, budget, work, records):
        self.a, self.work, self.records, self.out = a, work, records, os.path.abspath(a.out)
        self.clock = Clock(budget, a.tiny, costs)
        self.number = max((r["lease"] for r in records), default=0) + 1
        self.ctx = device_plan.Context(costs, budget, assume=a.assume,
                                       engine=chosen_engine(records) or TORCH_ENGINE[False])
        self.steps = programme(a.tiny, link_data(work, a.data))
        self.engine = chosen_engine(records)  # main-torch's engine, once a calibration chose it
        self.engine_why = "chosen in an earlier lease" if self.engine else "the programme's default (not calibrated)"
        self.cache = device_plan.Lease(compiled_before(self.steps, records, work))
        self.first_plan = {}
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                        CIFAR10_CACHE=os.path.join(work, device_pack.CACHE, "data"),
                        LENET_COMPILE_CACHE=os.path.join(work, device_pack.COMPILE_CACHE),
                        # JAX adds XLA's autotune cache, a folder inside its cache, to every compile's options,
                        # so a program's key names the cache's folder: off, the cache loads from another
                        # lease's work folder (a key then depends on the program, versions and flags only)
                        JAX_PERSISTENT_CACHE_ENABLE_XLA_CACHES="none")
        if not a.data.startswith("synthetic:"):
            self.env["CIFAR10"] = os.path.join(work, os.path.basename(a.data))  # parity reads it too

    def log(self, line):
        line = f"[device_run {time.strftime('%H:%M:%S')} +{self.clock.elapsed():.0f}s] {line}"
        print(line, flush=True)
        with open(os.path.join(self.out, "device_run.log"), "a") as f:
            f.write(line + "\n")

    def record(self, step, **fields):
        self.records.append({"name": step.name, "kind": step.kind, "batch": step.batch, "lease": self.number,
                             "machine": self.machine, "date": self.date, **fields})
        ledger.save(self.work, self.records, self.a.tiny)

    def todo(self):
        finished = {n for n, r in last_status(self.records).items() if r["status"] == "finished"}
        return [s for s in self.steps if s.name not in finished]

    def waits(self, step):
        """Why a step cannot start yet (a step it follows has not finished), or None."""
        last = last_status(self.records)
        if step.after and last.get(step.after, {}).get("status") != "finished":
            return f"waits for {step.after}"
        if step.later_than and (last.get(step.later_than, {}).get("status") != "finished"
                                or last[step.later_than]["lease"] == self.number):
            return f"runs in a later lease than {step.later_than}"
        return None

    def run(self):
        self.machine, line = probe_machine(self.a.tiny)
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.log(f"lease {self.number}: {'tiny, cpu' if self.a.tiny else 'gpu'}, budget {self.clock.budget} s"
                 + (f", continuing {len(last_status(self.records))} steps recorded earlier" if self.records else ""))
        self.log(f"machine: {line}")
        progress = progress_of(self.steps, self.records, self.work)
        self.plan_lease(progress)
        todo = self.todo()
        calibration = device_plan.calibrate_first(todo, self.a.tiny, self.engine)
        for step in ([calibration] if calibration else []) + todo:
            if StopRequest.signum:
                break
            if step.kind != "calibrate" and last_status(self.records).get(step.name, {}).get("status") == "finished":
                continue
            self.run_step(step, progress)
        if StopRequest.signum:  # no report: a stopped lease has little time left; the next lease rebuilds it
            bring_back(self.work, self.out, self.steps, self.records, self.log, final=True)
            self.log(f"stopped by {StopRequest.name()}: packed what it has; continue it with --continue {self.a.out}")
            raise SystemExit(128 + StopRequest.signum)
        report(self.work, self.log, self.env, f"{self.machine}, lease {self.number}"
               + (f" (and {self.number - 1} earlier)" if self.number > 1 else ""))
        bring_back(self.work, self.out, self.steps, self.records, self.log, final=True)
        self.say_plan_against_actual()
        self.log(f"done in {self.clock.elapsed():.0f} s; files: {' '.join(sorted(os.listdir(self.out)))}")

    def plan_lease(self, progress):
        """The plan this lease starts with, from the evidence (the calibration then corrects it)."""
        ctx = device_plan.Context(self.ctx.costs, self.ctx.budget, engine=self.ctx.engine, assume=self.ctx.assume,
                                  cached=self.cache.compiled)
        finished = [n for n, r in last_status(self.records).items() if r["status"] == "finished"]
        plan, _, _ = device_plan.plan_leases(self.todo(), ctx, self.clock.budget, 1, progress, finished)
        placed = plan[0][1] if plan else []
        self.first_plan = {step.name: est.seconds for step, est in placed}
        self.log("plan for this lease: " + (", ".join(f"{n} {s} s" for n, s in self.first_plan.items()) or "nothing fits"))

    def run_step(self, step, progress):
        why = self.waits(step)
        if why:
            self.log(f"{step.name}: {why}: next lease")
            return
        left = self.clock.left()
        verdict, est, after, epochs = device_plan.decide(step, self.ctx, self.cache, left, progress)
        if verdict == "wait":
            self.log(f"{step.name}: skipped, needs {est.seconds} s and {left:.0f} s are left: next lease")
            self.record(step, planned_s=est.seconds, cap_s=0, actual_s=0, status="skipped",
                        detail=f"not started: needs {est.seconds} s, {left:.0f} s left")
            return
        cap = device_plan.cap_for(est.seconds, left) if verdict == "run" else max(1, int(left) - KILL_GRACE_S)
        if self.a.tiny:
            cap = TINY_CAP_S
        cap = int(self.a.cap.get(step.name, cap))
        part = f", a part up to epoch {epochs}" if verdict == "part" else ""
        self.log(f"{step.name}: start (estimate {est.seconds} s, cap {cap} s{part})")
        self.clock.spend(est.seconds)
        rc, took, stopped = run_capped(command(step, self.records, self.engine, self.work),
                                       os.path.join(self.work, f"{step.name}.log"), cap, self.env,
                                       REPO if step.kind == "parity" else self.work)
        self.cache = after
        status = "finished" if rc == 0 else "cut" if stopped else "failed"
        detail = {"finished": "", "failed": f"exit {rc}",
                  "cut": f"stopped by {stopped}" if stopped != "cap" else f"stopped at its cap of {cap} s" + (
                      "; a part on purpose, resumed next lease" if verdict == "part" else "")}[status]
        short = missing(step, self.work) if status == "finished" else None
        if short:
            status, detail = "failed", short
        self.log(f"{step.name}: exit {rc if not stopped else stopped}, {status} ({took} s)" + (
            f"; {detail}" if detail else ""))
        extra = {}
        if step.name == "main-torch":
            extra["engine"] = self.engine or TORCH_ENGINE[step.tiny]
            detail = "; ".join(d for d in (detail, f"on {extra['engine']}: {self.engine_why}") if d)
        self.record(step, planned_s=est.seconds, lease_plan_s=self.first_plan.get(step.name), cap_s=cap,
                    actual_s=took, status=status, detail=detail, estimate_note=est.note(), **extra)
        if step.kind in ("speed", "calibrate"):
            self.calibrated(step)
        bring_back(self.work, self.out, self.steps, self.records, self.log)

    def calibrated(self, step):
        """Rates for the rest of the lease (not with --tiny: a CPU's rates say nothing of a GPU lease) and,
        once, PyTorch's engine for its main job."""
        measured = calibrate.measured_rows(self.work, step)
        if not self.a.tiny:
            self.ctx.rates.update(measured)
        if self.engine is None and last_status(self.records).get("main-torch", {}).get("status") != "finished":
            choice = calibrate.choose_engine(measured, calibrate.skipped_rows(self.work, step), self.a.tiny, step.batch)
            if choice:
                self.engine, self.engine_why = choice
                self.ctx.engine = self.engine if not self.a.tiny else self.ctx.engine
                self.log(f"main-torch engine: {self.engine} ({self.engine_why})")
        if measured:
            rates = ", ".join(f"{k} {r['img_per_s']:,.0f} img/s" for k, r in measured.items())
            self.log(f"{step.name}: calibrated {rates}")

    def say_plan_against_actual(self):
        """The lease's plan against what happened, step by step."""
        mine = [r for r in self.records if r["lease"] == self.number]
        self.log("plan against actual (s): step, planned at the lease's start, estimate when started, actual, status")
        for r in mine:
            self.log(f"  {r['name']:<15} {str(r.get('lease_plan_s') or '-'):>6} {r['planned_s']:>6} {r['actual_s']:>7} "
                     f"{r['status']}")


def link_data(work, data):
    """--data as the steps see it: the data file linked into the work folder under its own name, so
    commands and run.json name no folder of this machine (the link is not packed)."""
    if data.startswith("synthetic:"):
        return data
    name = os.path.basename(os.path.normpath(data))
    if not os.path.lexists(os.path.join(work, name)):
        os.symlink(data, os.path.join(work, name))
    return name


def main(argv=None):
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, StopRequest.handle)
    a = cli.parse(argv, __doc__.splitlines()[0])
    costs = device_plan.load_costs()
    budget = cli.budget(a.tiny, device_plan.lease_overhead(costs))
    a.data = None if a.plan else cli.data(a.tiny)
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
            show_plan(a, device_plan.Context(costs, budget, assume=a.assume, engine=chosen_engine(records)
                                             or TORCH_ENGINE[False],
                                             cached=compiled_before(programme(a.tiny), records, work)), records, work)
            return
        os.makedirs(a.out, exist_ok=True)
        LeaseRun(a, costs, budget, work, records).run()
    except cli.BadInput as e:
        cli.fail(str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
