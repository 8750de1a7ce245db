"""A lease's calibration, read: the speed rows timed at its start (the headline speed step in lease 1, whose
rows are the main jobs' engines; a short calibration step in the later leases) become the rates the rest
of the lease is planned with, and they choose PyTorch's engine for its main job."""
import json
import os

from benchmarks.device.steps import ENGINE_VARIANT, TORCH_ENGINE


def measured_rows(work, step):
    """{'variant@batch': row} of the rows `step` (a speed or calibration step that just ran) measured; a
    row it could not measure (skipped, failed) is left out."""
    path = os.path.join(work, step.argv[step.argv.index("--out") + 1], "speed.json")
    try:
        with open(path) as f:
            rows = json.load(f)["rows"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}
    wanted = {(item.partition("@")[0], int(item.partition("@")[2] or step.batch)) for item in step.rows}
    return {f"{r['variant']}@{r['batch']}": r for r in rows if isinstance(r, dict) and not r.get("skipped")
            and (r.get("variant"), r.get("batch")) in wanted and r.get("img_per_s")}


def skipped_rows(work, step):
    """{'variant@batch': why} of the rows `step` could not measure."""
    path = os.path.join(work, step.argv[step.argv.index("--out") + 1], "speed.json")
    try:
        with open(path) as f:
            return {f"{r['variant']}@{r['batch']}": r["skipped"] for r in json.load(f)["rows"] if r.get("skipped")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return {}


def choose_engine(measured, skipped, tiny, batch):
    """(engine, why) for PyTorch's main job: vmap-cudagraph (every lane in one CUDA graph) unless the
    single-lane CUDA graph trains more images a second, or the graph could not run; None when this
    calibration timed neither (the programme's default stands)."""
    names = ENGINE_VARIANT[tiny]
    graph_vmap, graph = (f"{names[e]}@{batch}" for e in ("vmap-cudagraph", "cudagraph"))
    a, b = measured.get(graph_vmap), measured.get(graph)
    if a and b:
        faster = "vmap-cudagraph" if a["img_per_s"] >= b["img_per_s"] else "cudagraph"
        return faster, (f"vmap-cudagraph {a['img_per_s']:,.0f} model-images/s, single-lane cudagraph "
                        f"{b['img_per_s']:,.0f}: {faster} is faster per image")
    if b and not a:
        return "cudagraph", f"vmap-cudagraph could not run ({skipped.get(graph_vmap, 'not timed')}); cudagraph is"
    if a and not b:
        return "vmap-cudagraph", "vmap-cudagraph ran; the single-lane CUDA graph could not"
    if graph_vmap in skipped and graph in skipped:
        return TORCH_ENGINE[tiny], f"no CUDA graph here ({skipped[graph]}): {TORCH_ENGINE[tiny]}"
    return None
