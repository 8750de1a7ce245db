"""The speed table (speed.md and the report's Speed section): every row of a speed run, each against
PyTorch's eager engine and each Flax row against the fastest PyTorch at the same model, batch, lanes
and precision, and against the fastest way PyTorch trains as many models there (its own lanes, or fewer
lanes one after the other)."""
import json


def fastest_torch(rows):
    """{(model, batch, lanes, precision): the fastest measured PyTorch row}."""
    best = {}
    for r in rows:
        key = (r["model"], r["batch"], r["seeds"], r["precision"])
        if r["framework"] == "torch" and (key not in best or r["img_per_s"] > best[key]["img_per_s"]):
            best[key] = r
    return best


def fastest_way(rows):
    """{(model, batch, lanes, precision): the fastest measured way PyTorch trains that many models at those
    settings: a row of as many lanes, or of fewer (a divisor) run one after the other, at its own
    model-images/s}."""
    torch_rows = [r for r in rows if r["framework"] == "torch"]
    best = {}
    for n in {r["seeds"] for r in rows}:
        for r in torch_rows:
            key = (r["model"], r["batch"], n, r["precision"])
            if n % r["seeds"] == 0 and (key not in best or r["img_per_s"] > best[key]["img_per_s"]):
                best[key] = r
    return best


def against(r, ref):
    """'0.86x (torch-compile, one after the other)': a Flax row against a PyTorch one, or '-'."""
    if not ref:
        return "-"
    return f"{r['img_per_s'] / ref['img_per_s']:.2f}x ({ref['variant']}" + \
        (", one after the other)" if ref["seeds"] != r["seeds"] else ")")


def table(rows, baseline="torch-eager"):
    measured = [r for r in rows if not r.get("skipped")]
    ref = {(r["model"], r["batch"], r["precision"]): r for r in measured if r["variant"].startswith(baseline)}
    fastest, way = fastest_torch(measured), fastest_way(measured)
    lines = ["| model | batch | lanes | precision | variant | train img/s (median) | min-max | vs torch eager | "
             "vs fastest PyTorch (name) | vs fastest PyTorch way, as many models (name) | compile s | eval img/s | "
             "vs torch eager |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["model"], r["batch"], r["seeds"], r["precision"], r["variant"])):
        head = f"| {r['model']} | {r['batch']} | {r['seeds']} | {r['precision']} | {r['variant']} |"
        if r.get("skipped"):
            lines.append(f"{head} skipped: {r['skipped']} |" + " - |" * 7)
            continue
        base, ev = ref.get((r["model"], r["batch"], r["precision"]), {}), r.get("eval_img_per_s")
        ratio = f"{r['img_per_s'] / base['img_per_s']:.2f}x" if base else "-"
        eval_ratio = f"{ev / base['eval_img_per_s']:.2f}x" if ev and base.get("eval_img_per_s") else "-"
        key = (r["model"], r["batch"], r["seeds"], r["precision"])
        flax = r["framework"] != "torch"
        vs_fastest = against(r, fastest.get(key)) if flax else "-"
        vs_fastest += f" | {against(r, way.get(key)) if flax else '-'}"
        lines.append(f"{head} {r['img_per_s']:,.0f} | "
                     f"{r['img_per_s_min']:,.0f}-{r['img_per_s_max']:,.0f} | {ratio} | {vs_fastest} | "
                     f"{r['compile_s']:.1f} | {f'{ev:,.0f}' if ev else '-'} | {eval_ratio} |")
    return "\n".join(lines)


def speed_machine(sp):
    """Where the speed rows were measured, in words (a merged table may hold several machines)."""
    machines = {json.dumps(r.get("machine", sp["machine"]), sort_keys=True) for r in sp["rows"]}
    said = [json.loads(m) for m in sorted(machines)]
    devices = lambda m: [d for d in dict.fromkeys(m.get("jax_devices", [])) if d != "cpu"]  # noqa: E731
    return "; ".join(f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores" + "".join(f", {d}" for d in devices(m))
                     for m in said)
