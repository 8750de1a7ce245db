"""Where, by which code and when each run group was trained, read from its histories (experiment.history
records the machine, the commit with a dirty flag, and the start date; older histories only the
machine), and the sentence a comparison needs when it pools runs of several machines or code versions."""

import json

NOT_RECORDED = "not recorded"


def machine_label(h):
    m = h.get("machine") or {}
    return f"{m.get('processor', 'unknown')}, {m.get('cores', '?')} cores"


def distinct(hs):
    """The histories, each run once: a run reused by another results folder (the sweep's --reuse copies
    the convergence runs) has the same framework, model, seed, machine and epochs, timings included."""
    seen = {}
    for h in hs:
        key = (h.get("framework"), h.get("model"), h.get("seed"), machine_label(h), json.dumps(h["epochs"]))
        seen.setdefault(key, h)
    return list(seen.values())


def later_fields(h, peers):
    """The config fields that other histories of its framework write and this one lacks: the mark of
    an earlier version of the code when no commit is recorded."""
    mine = set(h.get("config") or {})
    return sorted(set().union(*[set(p.get("config") or {}) for p in peers
                                if p.get("framework") == h.get("framework")]) - mine)


def code_key(h):
    """What tells code versions apart within a framework: the commit (and dirty flag) where recorded,
    else the set of config fields the version wrote; None where nothing can tell (not a git checkout)."""
    code = h.get("code")
    if code is None:
        return ("fields", frozenset(h.get("config") or {}))
    if code.get("commit") is None:
        return None
    return ("commit", code["commit"], code.get("dirty"))


def code_label(h, peers):
    code = h.get("code")
    if code is None:
        lacks = later_fields(h, peers)
        return NOT_RECORDED + (f" (an earlier version: its config lacks {', '.join(lacks)}, which a later version "
                               "writes)" if lacks else "")
    if code.get("commit") is None:
        return "unknown (not a git checkout)"
    dirty = {True: ", with uncommitted changes", False: "", None: ", changes unknown"}[code.get("dirty")]
    return f"commit {code['commit'][:10]}{dirty}"


def date_label(h):
    started = h.get("started")
    return started[:10] if isinstance(started, str) else NOT_RECORDED


def resumes(h):
    """The later parts of a resumed run ('from epoch k: ...'), when they ran elsewhere or by other code."""
    out = []
    for r in h.get("resumed", []):
        part = {**h, **{k: r[k] for k in ("machine", "code", "started") if k in r}}
        out.append((r.get("at_epoch"), part))
    return out


def seed_ranges(seeds):
    seeds = sorted(set(seeds))
    runs, start = [], None
    for i, s in enumerate(seeds):
        start = s if start is None else start
        if i + 1 == len(seeds) or seeds[i + 1] != s + 1:
            runs.append(f"{start}" if start == s else f"{start}–{s}")
            start = None
    return ", ".join(runs)


def groups(named, peers):
    """[(name, seeds, machine, code, date)] for histories grouped by name (a framework, a sweep's batch
    size), machine, code version and date; a resumed run adds its later parts. A seed of which only
    some models fall in a group is shown with them ('2 (dropout)')."""
    rows, models = {}, {}
    for name, hs in named.items():
        models[name] = set(h.get("model") for h in hs)
        for h in hs:
            parts = [(None, h)] + resumes(h)
            key = (name, " then ".join(dict.fromkeys(machine_label(p) for _, p in parts)),
                   " then ".join(dict.fromkeys(code_label(p, peers) for _, p in parts)),
                   " then ".join(dict.fromkeys(date_label(p) for _, p in parts)))
            rows.setdefault(key, {}).setdefault(h.get("seed"), set()).add(h.get("model"))
    out = []
    for (name, *labels), seeds in rows.items():
        whole = [s for s, ms in seeds.items() if ms == models[name] and s is not None]
        partial = [f"{s} ({', '.join(sorted(map(str, ms)))})" for s, ms in sorted(seeds.items(), key=str)
                   if ms != models[name] or s is None]
        out.append((name, ", ".join(x for x in [seed_ranges(whole)] + partial if x), *labels))
    return out


def table(named, peers):
    lines = ["| runs | seeds | machine | code version | started |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in groups(named, peers)]
    return "\n".join(lines)


def mixes(what, hs, peers=()):
    """One sentence when the histories `what` pools came from several machines or code versions
    (counted within each framework), or when some code version cannot be told; None otherwise."""
    parts = [p for h in hs for p in [h] + [x for _, x in resumes(h)]]
    machines = dict.fromkeys(machine_label(p) for p in parts)
    versions = {}
    for p in parts:
        versions.setdefault(p.get("framework"), set()).add(code_key(p))
    mixed = []
    if len(machines) > 1:
        mixed.append(f"{len(machines)} machines ({'; '.join(machines)})")
    if any(len(v - {None}) > 1 for v in versions.values()):
        mixed.append(" and ".join(f"{len(v)} code versions of {fw}" for fw, v in versions.items() if len(v) > 1)
                     + " (told apart by their commits or, where none is recorded, by the config fields they write)")
    untold = any(None in v for v in versions.values()) or any(
        k[0] == "fields" for v in versions.values() for k in v if k is not None)
    if mixed:
        return ("Runs of " + " and ".join(mixed) + f" are pooled in {what}: a difference between those groups is "
                "part of what it measures.")
    return (f"{what[0].upper()}{what[1:]}: the code versions of some runs are not recorded as commits, so whether "
            "they share one is told only by the config fields they write." if untold else None)


def pairs_mixed(what, base, drop):
    """The seeds whose BaseLine and Dropout runs (compared as a pair) ran on different machines or code."""
    bad = []
    for b, d in zip(base, drop):
        what_differs = [w for w, f in (("machines", machine_label), ("code versions", code_key)) if f(b) != f(d)]
        if what_differs:
            bad.append(f"seed {b.get('seed')} ({' and '.join(what_differs)})")
    return (f"In {what}, the BaseLine and Dropout runs of one seed differ in where or by which code they ran: "
            + "; ".join(bad) + "." if bad else None)
