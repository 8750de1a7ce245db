"""How long each step of the device run takes, and which lease runs it.

Every estimate is built from the measured figures in benchmarks/device/costs.json (each with its
source). Where no figure exists (a variant or engine not measured yet), the nearest measured one
stands in and the step's note says so; where that is an upper bound, the note says why. A lease
runs the steps in programme order and starts only those whose estimate fits in what is left, so a
long step waits for the next lease while the shorter ones after it fill this one."""
import json
import math
import os
import re
from dataclasses import dataclass, field

from benchmarks.device.steps import LANES_IMAGES, LANES_REPEATS, SPEED_IMAGES, SPEED_REPEATS, SPEED_TIMEOUT

COSTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "costs.json")
REPORT_RESERVE_S = 30  # kept at the end of every lease for the report and the tarballs (report: 3 s measured)
TINY_STEP_S, TINY_CAP_S = 30, 400  # --tiny: an allowance for a shared CPU in CI, not a measurement
PART_MIN_S = 60  # a training step longer than a lease starts a part only with at least this much left
VAL_IMAGES = 10000
TRAIN_IMAGES = 40000
OPTIONS = re.compile(r"-(unroll\d+|cmdbuf|donate|nochunk)")


def load_costs(path=COSTS):
    with open(path) as f:
        return json.load(f)


def fig(costs, name):
    return costs["figures"][name]["value"]


@dataclass
class Lease:
    """What a lease has already paid for: a fresh machine decodes the data and compiles each
    program once; a later step of the same lease finds them in the caches."""
    compiled: set = field(default_factory=set)
    data_loaded: bool = False


def flax_epoch_s(costs, lanes, batch):
    """Seconds a Flax epoch (40,000 training + 10,000 validation images per lane) takes, scaled from
    the 16-lane main job: linear in lanes (8 lanes took 0.22-0.23 s on 11-28, 16 lanes 0.425 s: about
    linear already); batch 32 at twice batch 64 (twice the steps, each at most a batch-64 step: an
    upper bound); 128 as 64 and 512 as 256 (the nearest measured batch; larger batches were faster)."""
    factor = {32: 2.0, 64: 1.0, 128: 1.0}.get(batch, fig(costs, "flax_batch_256_over_64"))
    base = fig(costs, "flax_epoch_16_lanes_s")
    how = "" if (lanes, factor) == (16, 1.0) else f": {base} s x {lanes}/16 lanes" + (
        f" x {factor:g} for batch {batch}" if factor != 1.0 else "")
    return base * lanes / 16 * factor, how


def speed_figure(costs, variant, batch):
    """(measured row, note) for a speed variant at a batch size: the row itself, or the nearest
    measured one with the reason it stands in."""
    rows, notes = costs["speed_rows"], []
    for _ in range(8):
        key = f"{variant}@{batch}"
        if key in rows:
            return rows[key], "; ".join(notes) or rows[key]["source"]
        if OPTIONS.search(variant):
            variant = OPTIONS.sub("", variant)
            notes.append("option not measured: its base variant's row")
        elif variant.startswith("torch-cudagraph-vmap"):
            variant = variant.replace("torch-cudagraph-vmap", "torch-vmap")
            notes.append("vmap-cudagraph not measured: vmap's row (an upper bound: the graph removes launches)")
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


def speed_row_s(costs, variant, batch, lanes):
    """One row of benchmarks.runners.speed as the device run's speed steps run it (SPEED_IMAGES, SPEED_REPEATS,
    at most SPEED_TIMEOUT s): process set-up, compile, warm-up + timed epochs, evaluations."""
    row, note = speed_figure(costs, variant, batch)
    runs = SPEED_REPEATS + 1
    s = (fig(costs, "speed_row_overhead_s") + row["compile_s"] + runs * SPEED_IMAGES / row["img_per_s"]
         + runs * VAL_IMAGES * lanes / row["eval_img_per_s"])
    return min(s, SPEED_TIMEOUT), note


def lanes_rate(costs, n):
    """Model-images/s of n lanes: the nearest measured lane count at or below n (no slower per image)."""
    measured = sorted(int(k) for k in costs["lanes_rates"] if k.isdigit())
    return costs["lanes_rates"][str(max(m for m in measured if m <= n))]["img_per_s"]


def estimate(step, costs, lease, done_epochs=0, ran_s=0.0):
    """(seconds, note) of a step in this lease; updates `lease` with what the step leaves cached.
    `done_epochs`: epochs a cut training step already has (it resumes); `ran_s`: seconds a cut
    step that cannot resume already ran without finishing (it takes at least that)."""
    if step.name in costs.get("assume", {}):
        return math.ceil(costs["assume"][step.name]), "assumed (a what-if given on the command line, not measured)"
    if step.tiny:
        return TINY_STEP_S, "tiny: an allowance for the CPU test"
    if step.kind == "parity":
        passed, at, total = (fig(costs, k) for k in ("parity_tests_passed", "parity_seconds_at_that_point",
                                                     "parity_tests"))
        s = at / passed * total
        note = (f"{passed} of {total} tests in {at} s (N30), at that rate for all; the unfinished tail is the "
                f"learning-curve tests, so it may take longer; the GPU-parity issue's goal: "
                f"{fig(costs, 'parity_goal_s')} s")
    elif step.kind in ("train", "sweep"):
        s, parts = 0.0, []
        if not lease.data_loaded:
            s += fig(costs, "data_decode_s")
            parts.append("data decode")
            lease.data_loaded = True
        epochs = step.epochs - done_epochs
        if step.framework == "flax":
            key = ("flax", step.lanes, step.batch)
            warm = key in lease.compiled
            lease.compiled.add(key)
            epoch, how = flax_epoch_s(costs, step.lanes, step.batch)
            s += fig(costs, "flax_outside_epochs_s") + fig(costs, "flax_compile_warm_s" if warm else
                                                            "flax_compile_cold_s") + epochs * epoch
            parts.append(f"{epochs} epochs x {epoch:.3f} s ({step.lanes} lanes, batch {step.batch}{how}), compile "
                         + ("warm" if warm else "cold"))
            if step.eval_train:  # one more evaluation, of the training images, at the 8-lane program's eval rate
                extra = TRAIN_IMAGES * step.lanes / costs["lanes_rates"]["8"]["eval_img_per_s"]
                s += epochs * extra
                parts.append(f"--eval-train {extra:.3f} s an epoch (the 8-lane eval rate, S28)")
        else:
            epoch = fig(costs, "torch_vmap_epoch_16_lanes_s") * step.lanes / 16
            s += fig(costs, "torch_outside_epochs_s") + epochs * epoch
            parts.append(f"{epochs} epochs x {epoch:.2f} s: vmap's, an upper bound for vmap-cudagraph (not measured)")
        if step.kind == "train":  # benchmarks.runners.convergence tests every best checkpoint, one process
            ev = (fig(costs, "flax_outside_epochs_s") + fig(costs, "flax_compile_cold_s") / 3
                  if step.framework == "flax" else fig(costs, "torch_outside_epochs_s"))
            s += ev
            parts.append(f"test evaluation {ev:.0f} s (not measured: a command's time outside its epochs"
                         + (" + one cold program)" if step.framework == "flax" else ")"))
        if done_epochs:
            parts.append(f"resumes after epoch {done_epochs}")
        note = "; ".join(parts)
    elif step.kind == "speed":
        s, notes = 0.0, []
        for v in step.rows:
            row_s, why = speed_row_s(costs, v, step.batch, step.lanes)
            s += row_s
            if "not measured" in why:
                notes.append(why)
        note = unique_notes([f"{len(step.rows)} rows, each at most {SPEED_TIMEOUT} s", *notes])
    elif step.kind == "lanes":
        s = fig(costs, "startup_s")
        for n in step.rows:
            eight, timed = costs["lanes_rates"]["8"], LANES_REPEATS + 1  # a warm-up epoch, then the timed ones
            s += (fig(costs, "speed_row_overhead_s") + eight["compile_s"]
                  + timed * LANES_IMAGES * n / lanes_rate(costs, n) + timed * VAL_IMAGES * n / eight["eval_img_per_s"])
        note = "a row per lane count; above 16 lanes at 16 lanes' rate, compile as 8 lanes' (nearest measured)"
    else:
        raise ValueError(f"unknown step kind {step.kind!r}")
    if ran_s > s:
        s, note = ran_s, f"ran {ran_s:.0f} s without finishing last time, so at least that"
    return math.ceil(s), note


def cap_for(step, estimate_s, left_s):
    """The most a step may run: its estimate with a margin, never past what the lease has left."""
    return min(left_s, TINY_CAP_S if step.tiny else math.ceil(estimate_s * 1.25 + 10))


def decide(step, costs, lease, left_s, usable_s, progress):
    """Whether a step runs in what is left of a lease: ("run", s, note, lease after it, epochs), ("part",
    ...) for a main job longer than any lease, started now with the epochs that fit and continued next
    lease (it resumes), or ("wait", ...) for the next lease."""
    done, ran = progress.get(step.name, (0, 0.0))
    trial = Lease(set(lease.compiled), lease.data_loaded)
    s, note = estimate(step, costs, trial, done, ran)
    if s <= left_s:
        return "run", s, note, trial, step.epochs
    # only the main jobs: 16 lanes' state fits what comes back, a sweep batch's 40 lanes do not
    if step.kind == "train" and s > usable_s and left_s >= PART_MIN_S and not step.tiny:
        for n in range(step.epochs - done - 1, 0, -1):
            part = Lease(set(lease.compiled), lease.data_loaded)
            s, note = estimate(step, costs, part, step.epochs - n, 0.0)
            if s <= left_s:
                note = unique_notes([note.replace(f"resumes after epoch {step.epochs - n}", "").replace(
                    f"{n} epochs", f"epochs {done + 1}-{done + n} of {step.epochs}"),
                    "a part, cut at its cap on purpose, resumed next lease"])
                return "part", left_s, note, part, done + n
    return "wait", s, note, lease, done


def plan_leases(steps, costs, budget, leases=None, progress=None):
    """[(lease number, [(step, seconds, note)], seconds used)] until every step is placed (or `leases`
    leases), the steps still to run, and those that fit no lease. `progress[name]`: (epochs done,
    seconds run) of a step cut earlier."""
    progress = dict(progress or {})
    todo, plan = list(steps), []
    usable = budget - fig(costs, "startup_s") - REPORT_RESERVE_S
    while todo and (leases is None or len(plan) < leases):
        lease, placed, used = Lease(), [], 0
        for step in list(todo):
            verdict, s, note, after, done = decide(step, costs, lease, usable - used, usable, progress)
            if verdict == "wait":
                continue
            lease, used = after, used + s
            placed.append((step, s, note))
            if verdict == "run":
                todo.remove(step)
            else:
                progress[step.name] = (done, 0.0)
        if not placed:  # nothing left fits even an empty lease
            return plan, [], todo
        plan.append((len(plan) + 1, placed, used))
    return plan, todo, []


def unique_notes(notes):
    out = []
    for part in (p for n in notes for p in n.split("; ")):
        if part and part not in out:
            out.append(part)
    return "; ".join(out)


def format_plan(placed, costs, budget, kept=(), first=1):
    """The plan as text: `placed` is plan_leases' (plan, steps left, steps that fit no lease); `first`
    the number of its first lease (after those a --continue keeps)."""
    plan, left, never = placed
    lines = [f"Budget {budget} s a lease: {fig(costs, 'startup_s')} s start-up (N30) + steps + "
             f"{REPORT_RESERVE_S} s kept for the report and the tarballs. Sources: benchmarks/device/costs.json "
             f"(N28, N30: the H200 notes of 2026-11-28 and 11-30; R30: the raw results of 11-30; S28: speed rows "
             f"of 11-28)."]
    if kept:
        lines.append(f"Kept from earlier leases (finished, not run again): {', '.join(kept)}")
    total = 0
    for n, placed, used in plan:
        lines.append(f"lease {n + first - 1}:")
        for step, s, note in placed:
            lines.append(f"  {step.name:<20} {s:5d} s  {note}")
        lease_s = used + fig(costs, "startup_s") + REPORT_RESERVE_S
        total += lease_s
        lines.append(f"  {'lease total':<20} {lease_s:5d} s of {budget}")
    if not plan and not left and not never:
        return "\n".join(lines + ["Nothing left to run."])
    lines.append(f"{len(plan)} lease(s), {total} s in all" + (
        f"; still to run after them: {', '.join(s.name for s in left)}" if left else
        "; every step placed" if not never else ""))
    for step in never:
        lines.append(f"does not fit a lease: {step.name}")
    return "\n".join(lines)
