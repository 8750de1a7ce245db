"""How long each step of the device run takes, and which lease runs it.

Every estimate is built from the figures of benchmarks/device/costs.json, each measured (a row of
benchmarks/device/evidence, with machine and date), a bound, derived by a stated rule, or an input; the
speed rows are the evidence files' own. Each estimate says which of its parts are which, and `worst` mode
takes every figure at its worst case. At run time a lease's calibration (benchmarks.device.calibrate) gives
the rates instead. A lease runs the steps in programme order and starts only those whose estimate fits in
what is left (and whose `after` step has finished), so a long step waits for the next lease while the
shorter ones after it fill this one."""
import glob
import json
import math
import os
import re
from dataclasses import dataclass, field

from benchmarks.device.steps import (ENGINE_VARIANT, SPEED_IMAGES, SPEED_REPEATS, SPEED_TIMEOUT, SPEED_WINDOW_S,
                                     TORCH_ENGINE, by_name, calibration, sized)

from benchmarks.device.pack import STATE_BYTES, STATE_PER_LANE

HERE = os.path.dirname(os.path.abspath(__file__))
COSTS = os.path.join(HERE, "costs.json")
EVIDENCE = os.path.join(HERE, "evidence")
REPORT_RESERVE_S = 15  # kept at the end of every lease for the report (3 s measured) and the tarballs
PART_MIN_S = 60  # a training step longer than a lease starts a part only with at least this much left
VAL_IMAGES, TRAIN_IMAGES = 10000, 40000
OPTIONS = re.compile(r"-(unroll\d+|cmdbuf|donate|nochunk)")
EVAL_SHARE = 0.25  # benchmarks.runners.speed times evaluation over this share of its window
ENGINE_ROWS = ENGINE_VARIANT[False]  # main-torch's engines, as the speed runner names them (16 lanes)
FLAX_ROW = "flax-scan-matmul-vmap16"  # the main jobs' Flax engine, as the speed runner times it


def load_costs(path=COSTS, evidence=EVIDENCE):
    """costs.json's figures, the evidence rows by id ('file#id') and the speed rows (dropout model, the
    latest of each variant@batch)."""
    with open(path) as f:
        costs = json.load(f)
    rows = {}
    for p in sorted(glob.glob(os.path.join(evidence, "*.jsonl"))):
        name = os.path.basename(p)[:-len(".jsonl")]
        with open(p) as f:
            rows.update({f"{name}#{r['id']}": r for r in map(json.loads, f)})
    speed = {}
    for key, r in sorted(rows.items(), key=lambda kv: kv[1]["date"]):
        if key.split("#")[1].startswith("speed/") and r.get("model") == "dropout":
            speed[f"{r['variant']}@{r['batch']}"] = {**r, "source": key}
    return {**costs, "evidence": rows, "speed_rows": speed}


@dataclass
class Context:
    """What estimates are made from: the costs, the lease's budget, this lease's calibrated rows by
    'variant@batch' (empty: the evidence's) and PyTorch's chosen engine, `worst` (every figure at its worst
    case), the what-ifs given on the command line and the programs the compile cache holds."""
    costs: dict
    budget: int = 540
    rates: dict = field(default_factory=dict)
    engine: str = TORCH_ENGINE[False]
    worst: bool = False
    assume: dict = field(default_factory=dict)
    cached: set = field(default_factory=set)  # programs the compile cache that came back holds

    def fig(self, name):
        f = self.costs["figures"][name]
        return f.get("worst", f["value"]) if self.worst else f["value"]

    def kind(self, name):
        f = self.costs["figures"][name]
        return "worst" if self.worst and "worst" in f else f["kind"]


def fig(costs, name):
    return costs["figures"][name]["value"]


def lease_overhead(costs):
    return fig(costs, "startup_s") + REPORT_RESERVE_S


@dataclass
class Lease:
    """What a lease has already paid for: a fresh machine decodes the data once (every step reads the
    shared decoded cache) and compiles each program once (later steps, and later leases once the cache
    came back, find them in JAX's persistent cache)."""
    compiled: set = field(default_factory=set)
    data_loaded: bool = False


class Estimate:
    """Seconds of a step, part by part, each part saying what kind of figure it rests on."""

    def __init__(self):
        self.parts = []

    def add(self, what, seconds, kind):
        self.parts.append((what, seconds, kind))
        return seconds

    @property
    def seconds(self):
        return math.ceil(sum(s for _, s, _ in self.parts))

    def note(self):
        return "; ".join(f"{what} {s:.0f} s [{kind}]" for what, s, kind in self.parts)


def speed_figure(costs, variant, batch):
    """(measured row, note) for a speed variant at a batch size: the row itself, or the nearest
    measured one with the reason it stands in."""
    rows, notes = costs["speed_rows"], []
    for _ in range(8):
        key = f"{variant}@{batch}"
        if key in rows:
            return rows[key], "; ".join(notes)
        if OPTIONS.search(variant):
            variant = OPTIONS.sub("", variant)
            notes.append("option not measured: its base variant's row")
        elif variant.startswith("torch-cudagraph-vmap"):
            variant = variant.replace("torch-cudagraph-vmap", "torch-vmap")
            notes.append("vmap-cudagraph not measured: vmap's row (a bound: the graph removes launches)")
        elif variant.endswith("-tf32"):
            variant = variant[:-5]
            notes.append("tf32 not measured: the float32 row")
        elif any(k.split("@")[0] == variant for k in rows):
            measured = sorted(int(k.split("@")[1]) for k in rows if k.split("@")[0] == variant)
            nearest = min(measured, key=lambda b: abs(b - batch))
            notes.append(f"batch {batch} not measured: batch {nearest}'s row")
            batch = nearest
        elif re.search(r"vmap(\d+)", variant):
            n = int(re.search(r"vmap(\d+)", variant).group(1))
            named = {m: re.sub(r"-vmap\d+", "" if m == 1 else f"-vmap{m}", variant) for m in range(1, n)}
            have = [m for m, v in named.items() if any(k.split("@")[0] == v for k in rows)]
            if not have:
                break
            variant = named[max(have)]
            notes.append("lanes not measured: the nearest fewer lanes' rate (more lanes train no slower per image)")
        else:
            break
    raise ValueError(f"no measured figure near speed variant {variant!r}")


def row_config(item, batch):
    """'VARIANT@BATCH' or 'VARIANT' (at the step's batch) -> (variant, batch)."""
    variant, _, at = item.partition("@")
    return variant, int(at) if at else batch


def lanes_of(variant):
    m = re.search(r"vmap(\d+)", variant)
    return int(m.group(1)) if m else 1


def speed_s(ctx, step, lease, est):
    """A speed (or calibration) step: a process per framework and XLA-flag set, then each row: set-up,
    compile (the evaluation's a third of it; a program the persistent cache holds loads instead), a
    warm-up and the timed windows."""
    configs = [row_config(r, step.batch) for r in step.rows]
    groups = {(v.split("-")[0], "-cmdbuf" in v) for v, _ in configs}
    est.add(plural(len(groups), "process start-up"), len(groups) * ctx.fig("process_startup_s"),
            ctx.kind("process_startup_s"))
    est.add(plural(len(configs), "row set-up"), len(configs) * ctx.fig("speed_row_setup_s"), ctx.kind("speed_row_setup_s"))
    kinds, seconds, stand_ins, warm = set(), 0.0, [], 0
    for variant, b in configs:
        row, why = calibrated_row(ctx, variant, b) or speed_figure(ctx.costs, variant, b)
        kinds.add("calibrated" if why == "calibrated" else "derived" if why else "measured")
        stand_ins += why.split("; ") if why and why != "calibrated" else []
        key = ("row", variant, b)
        compile_s = row["compile_s"] * 4 / 3
        if key in lease.compiled and variant.startswith("flax"):
            compile_s, warm = ctx.fig("flax_compile_warm_s") / 3, warm + 1  # 3 programs: a third each
        lease.compiled.add(key)
        epoch = SPEED_IMAGES / row["img_per_s"]
        s = (compile_s + max(SPEED_WINDOW_S, SPEED_REPEATS * epoch) + 2 * epoch
             + max(SPEED_WINDOW_S * EVAL_SHARE, (SPEED_REPEATS + 1) * VAL_IMAGES * lanes_of(variant) / row["eval_img_per_s"]))
        seconds += min(s, SPEED_TIMEOUT)
    stand_ins = list(dict.fromkeys(stand_ins))
    est.add("their compiles and timed windows" + (f" ({warm} from the compile cache)" if warm else "")
            + (" (where a row is not measured: " + "; ".join(stand_ins) + ")" if stand_ins else ""),
            seconds, "/".join(sorted(kinds)))


def plural(n, what):
    return f"{n} {what}{'s' if n != 1 else ''}"


def calibrated_row(ctx, variant, batch):
    row = ctx.rates.get(f"{variant}@{batch}")
    return (row, "calibrated") if row else None


def flax_lane_epoch(ctx, batch, eval_train):
    """(seconds of one lane's epoch at this batch size, its kind, how)."""
    ev = ctx.rates.get(f"{FLAX_ROW}@64")
    if ev:  # this lease's calibration: training and evaluation rates of the main jobs' engine
        train, val, kind, how = TRAIN_IMAGES / ev["img_per_s"], VAL_IMAGES / ev["eval_img_per_s"], "calibrated", \
            f"{ev['img_per_s']:,.0f} model-img/s training, {ev['eval_img_per_s']:,.0f} evaluating (this lease)"
        eval_rate = ev["eval_img_per_s"]
    else:
        eval_rate = ctx.fig("flax_eval_img_per_s")
        val = VAL_IMAGES / eval_rate
        train, kind, how = ctx.fig("flax_lane_epoch_s") - val, ctx.kind("flax_lane_epoch_s"), \
            f"{ctx.fig('flax_lane_epoch_s')} s a lane (R30)"
    if batch != 64:
        name = f"flax_batch_factor_{batch if batch in (32, 128, 256, 512) else 256}"
        train *= ctx.fig(name)
        kind, how = f"{kind}, {ctx.kind(name)}", f"{how} x {ctx.fig(name):g} for batch {batch}"
    extra = TRAIN_IMAGES / eval_rate if eval_train else 0.0
    return train + val + extra, kind, how + (", + --eval-train's pass" if eval_train else "")


def torch_lane_epoch(ctx, engine):
    """(seconds of one lane's epoch on a PyTorch engine, its kind, how)."""
    ev = ctx.rates.get(f"{ENGINE_ROWS[engine]}@64")
    if ev:
        return (TRAIN_IMAGES / ev["img_per_s"] + VAL_IMAGES / ev["eval_img_per_s"], "calibrated",
                f"{engine} at {ev['img_per_s']:,.0f} model-img/s (this lease)")
    rows = ctx.costs["speed_rows"]
    if engine == "vmap-cudagraph":
        graph, vmap, gain = rows["torch-cudagraph@64"], rows["torch-vmap16@64"], ctx.fig("torch_vmap_cudagraph_gain")
        rate = graph["img_per_s"] * gain
        return (TRAIN_IMAGES / rate + VAL_IMAGES / vmap["eval_img_per_s"], ctx.kind("torch_vmap_cudagraph_gain"),
                f"vmap-cudagraph at {rate:,.0f} model-img/s (cudagraph's measured {graph['img_per_s']:,.0f} x "
                f"{gain:g}, not measured)")
    row = rows[f"{ENGINE_ROWS[engine]}@64"]
    return (TRAIN_IMAGES / row["img_per_s"] + VAL_IMAGES / row["eval_img_per_s"], "measured",
            f"{engine} at {row['img_per_s']:,.0f} model-img/s")


def data_and_compile(ctx, step, lease, est):
    if not lease.data_loaded:
        est.add("data decode", ctx.fig("data_decode_s"), ctx.kind("data_decode_s"))
        lease.data_loaded = True
    if step.framework == "flax":
        key = ("flax", step.lanes, step.batch, step.eval_train)
        warm = key in lease.compiled
        lease.compiled.add(key)
        name = "flax_compile_warm_s" if warm else "flax_compile_cold_s"
        est.add(f"outside the epochs + compile ({'warm' if warm else 'cold'})",
                ctx.fig("flax_outside_s") + ctx.fig(name), ctx.kind(name))
    else:
        est.add("outside the epochs (start-up, data, capture)", ctx.fig("torch_outside_s"), ctx.kind("torch_outside_s"))


def estimate(step, ctx, lease, progress=(0, 0.0)):
    """Estimate of a step in this lease; updates `lease` with what the step leaves cached. progress:
    (epochs a cut training step already has: it resumes; seconds a cut step that cannot resume already ran
    without finishing: it takes at least that)."""
    done, ran = progress
    h = sized(step)
    est = Estimate()
    if step.name in ctx.assume:
        est.add("assumed (a what-if given on the command line)", ctx.assume[step.name], "input")
        return est
    if h.kind == "parity":
        est.add("the GPU parity suite, decoding the data into the lease's cache", ctx.fig("parity_s"),
                ctx.kind("parity_s"))
        lease.data_loaded = True  # its decoded copy is the one every later step of the lease reads
    elif h.kind in ("speed", "calibrate"):
        speed_s(ctx, h, lease, est)
    elif h.kind in ("train", "extend", "sweep"):
        if h.kind == "extend" and not done:  # not started: it resumes the finished run it copies
            done = by_name(h.after).epochs
        data_and_compile(ctx, h, lease, est)
        epochs = h.epochs - done
        if h.framework == "flax":
            lane, kind, how = flax_lane_epoch(ctx, h.batch, h.eval_train)
        else:
            lane, kind, how = torch_lane_epoch(ctx, ctx.engine)
        est.add(f"{epochs} epochs x {h.lanes} lanes x {lane:.4f} s ({how})" + (
            f", resuming after epoch {done}" if done else ""), epochs * h.lanes * lane, kind)
        if h.kind in ("train", "extend"):  # benchmarks.runners.convergence evaluates every best checkpoint
            name = "flax_test_eval_s" if h.framework == "flax" else "torch_test_eval_s"
            est.add("test evaluation", ctx.fig(name), ctx.kind(name))
    else:
        raise ValueError(f"unknown step kind {h.kind!r}")
    if ran > est.seconds:
        est.parts = [(f"ran {ran:.0f} s without finishing last time, so at least that", ran, "measured")]
    return est


def cap_for(estimate_s, left_s):
    """The most a step may run: its estimate with a margin, never past what the lease has left."""
    return min(left_s, math.ceil(estimate_s * 1.25 + 10))


def decide(step, ctx, lease, left_s, progress):
    """Whether a step runs in what is left of a lease: ("run", estimate, lease after it, epochs), ("part",
    ...) for a main job longer than any lease, started now with the epochs that fit and continued next
    lease (it resumes), or ("wait", ...) for the next lease."""
    done, ran = progress.get(step.name, (0, 0.0))
    trial = Lease(set(lease.compiled), lease.data_loaded)
    est = estimate(step, ctx, trial, (done, ran))
    h = sized(step)
    if est.seconds <= left_s:
        return "run", est, trial, h.epochs
    # a training step whose lanes' state fits what comes back may start a part that fills what is left (a main
    # job too long for this lease's rest answers what its epochs reached, and goes on next lease)
    partable = h.kind in ("train", "extend", "sweep") and h.lanes * STATE_PER_LANE <= STATE_BYTES
    if partable and left_s >= PART_MIN_S and step.name not in ctx.assume:
        for n in range(h.epochs - done - 1, 0, -1):
            part = Lease(set(lease.compiled), lease.data_loaded)
            est = estimate(step, ctx, part, (h.epochs - n, 0.0))
            if est.seconds <= left_s:
                est.parts = [(what.replace(f"{n} epochs", f"epochs {done + 1}-{done + n} of {h.epochs}").replace(
                    f", resuming after epoch {h.epochs - n}", ""), s, k) for what, s, k in est.parts]
                est.add("a part, cut at its cap on purpose, resumed next lease", 0, "plan")
                return "part", est, part, done + n
    return "wait", est, lease, done


def calibrate_first(todo, tiny, engine=None):
    """The calibration a lease starts with, or None: none while the headline speed step is still to run
    (its rows, run before the main jobs, are lease 1's calibration) or no training step is left."""
    fws = {sized(s).framework for s in todo if sized(s).kind in ("train", "extend", "sweep")}
    if not fws or any(s.name == "speed" for s in todo):
        return None
    return calibration(fws, tiny, engine)


def plan_leases(steps, ctx, budget, leases=None, progress=None, finished=()):
    """[(lease number, [(step, estimate)], seconds used)] until every step is placed (or `leases`
    leases), the steps still to run, and those that fit no lease. `progress[name]`: (epochs done,
    seconds run) of a step cut earlier; `finished`: the steps earlier leases finished. A lease without the
    headline speed step (whose rows calibrate) starts with a calibration of the engines its training
    steps use."""
    progress = dict(progress or {})
    todo, plan, finished, compiled = list(steps), [], set(finished), set(ctx.cached)
    usable = budget - lease_overhead(ctx.costs)
    while todo and (leases is None or len(plan) < leases):
        lease, placed, used = Lease(set(compiled)), [], 0
        cal = calibrate_first(todo, todo[0].tiny)
        if cal:
            est = estimate(cal, ctx, lease)
            placed.append((cal, est))
            used += est.seconds
        before = set(finished)  # finished in earlier leases
        for step in list(todo):
            if step.after and step.after not in finished or step.later_than and step.later_than not in before:
                continue
            verdict, est, after, done = decide(step, ctx, lease, usable - used, progress)
            if verdict == "wait":
                continue
            lease, used = after, used + est.seconds
            placed.append((step, est))
            if verdict == "run":
                todo.remove(step)
                finished.add(step.name)
            else:
                progress[step.name] = (done, 0.0)
        if not [s for s, _ in placed if s.kind != "calibrate"]:  # nothing left fits even an empty lease
            return plan, [], todo
        compiled |= lease.compiled  # the compile cache comes back with the lease's results
        plan.append((len(plan) + 1, placed, used))
    return plan, todo, []


def format_plan(placed, ctx, budget, kept=(), first=1):
    """The plan as text: `placed` is plan_leases' (plan, steps left, steps that fit no lease); `first`
    the number of its first lease (after those a --continue keeps)."""
    plan, left, never = placed
    lines = [f"Budget {budget} s a lease: {fig(ctx.costs, 'startup_s')} s start-up + steps + {REPORT_RESERVE_S} s kept "
             f"for the report and the tarballs. Figures: benchmarks/device/costs.json, each [measured] (a row of "
             f"benchmarks/device/evidence/*.jsonl: machine, date, command), [bound], [derived] (by the rule costs.json "
             f"states, not measured) or [input]; each lease's calibration replaces the rates when it runs."]
    if kept:
        lines.append(f"Kept from earlier leases (finished, not run again): {', '.join(kept)}")
    total = 0
    for n, steps, used in plan:
        lines.append(f"lease {n + first - 1}:")
        for step, est in steps:
            lines.append(f"  {step.name:<15} {est.seconds:5d} s  {est.note()}")
        lease_s = used + lease_overhead(ctx.costs)
        total += lease_s
        lines.append(f"  {'lease total':<15} {lease_s:5d} s of {budget}")
    if not plan and not left and not never:
        return "\n".join(lines + ["Nothing left to run."])
    lines.append(f"{len(plan)} lease(s), {total} s in all" + (
        f"; still to run after them: {', '.join(s.name for s in left)}" if left else
        "; every step placed" if not never else ""))
    for step in never:
        lines.append(f"does not fit a lease: {step.name}")
    return "\n".join(lines + figures_used(ctx.costs))


def figures_used(costs):
    """Each figure with its kind and the evidence rows it comes from (benchmarks/device/evidence/FILE.jsonl#id)."""
    lines = ["Figures (costs.json) and their evidence (benchmarks/device/evidence/FILE.jsonl, row id):"]
    for name, f in costs["figures"].items():
        worst = f" (worst {f['worst']})" if "worst" in f else ""
        lines.append(f"  {name} = {f['value']}{worst} [{f['kind']}]: {', '.join(f['evidence'])}")
    sources = sorted({r["source"] for r in costs["speed_rows"].values()})
    lines.append(f"  speed rows [measured], the latest of each variant and batch: {', '.join(sources)}")
    return lines
