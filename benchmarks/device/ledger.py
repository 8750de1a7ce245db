"""steps.json, the device run's ledger: every step of every lease (name, lease, machine, date, status, planned,
capped and actual seconds), and which programme it belongs to. An earlier lease's ledger is read as
input that may be damaged: anything but the shape written here is BadInput, one line."""
import json
import os

from benchmarks.device.cli import BadInput
from experiment.atomic import atomic_write_text

FILE = "steps.json"
STATUSES = ("finished", "cut", "skipped", "failed")
PROGRAMMES = {True: "tiny", False: "h200"}  # --tiny or not
# field -> the types a record may hold there (bool is not a number here)
FIELDS = {"name": (str,), "status": (str,), "lease": (int,), "actual_s": (int, float), "planned_s": (int, float),
          "cap_s": (int, float), "machine": (str,), "date": (str,), "batch": (int,), "kind": (str,), "detail": (str,),
          "engine": (str,)}
ENGINES = ("vmap-cudagraph", "cudagraph", "vmap")  # main-torch's engines a record may name (the next lease uses it)


def save(work, records, tiny):
    atomic_write_text(os.path.join(work, FILE), json.dumps({"programme": PROGRAMMES[tiny], "records": records},
                                                           indent=1) + "\n")


def load(work, tiny, where):
    """The records of the lease unpacked in `work`, checked: written by a device run of this programme."""
    path = os.path.join(work, FILE)
    if not os.path.isfile(path):
        raise BadInput(f"--continue {where}: no {FILE} in it (not a device run's results)")
    try:
        with open(path) as f:
            ledger = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        raise BadInput(f"--continue {where}: {FILE} is not readable JSON ({type(e).__name__})") from None
    if not isinstance(ledger, dict) or not isinstance(ledger.get("records"), list):
        raise BadInput(f"--continue {where}: {FILE} is not a device run's ledger (no list of records)")
    programme = ledger.get("programme")
    if programme not in PROGRAMMES.values():
        raise BadInput(f"--continue {where}: {FILE} does not say which programme its steps are (tiny or h200): "
                       f"written by an older device run, it cannot be continued")
    if programme != PROGRAMMES[tiny]:
        raise BadInput(f"--continue {where}: its steps are the {'tiny (CPU)' if programme == 'tiny' else 'H200'} "
                       f"programme's; continue it {'with' if programme == 'tiny' else 'without'} --tiny")
    for i, r in enumerate(ledger["records"]):
        why = bad_record(r)
        if why:
            raise BadInput(f"--continue {where}: {FILE} record {i + 1} {why}")
    return ledger["records"]


def bad_record(r):
    if not isinstance(r, dict):
        return "is not an object"
    for key, types in FIELDS.items():
        if key in r and (isinstance(r[key], bool) or not isinstance(r[key], types)):
            return f"has {key} of type {type(r[key]).__name__}"
    missing = [k for k in ("name", "status", "lease", "actual_s") if k not in r]
    if missing:
        return f"has no {', '.join(missing)}"
    if r["status"] not in STATUSES:
        return f"has status {r['status']!r}, not one of {', '.join(STATUSES)}"
    if r["lease"] < 1 or r["actual_s"] < 0:
        return "has a lease below 1 or negative seconds"
    if r.get("engine", ENGINES[0]) not in ENGINES:
        return f"names engine {r['engine']!r}, not one of {', '.join(ENGINES)}"
    return None


def last_status(records):
    return {r["name"]: r for r in records}  # later records replace earlier ones


def epochs_in(work, folder):
    """The epochs every lane of a training folder has (the fewest), from its history.json files; BadInput
    for one that cannot be read (the step could not resume from it)."""
    lengths = []
    for d, _, files in os.walk(os.path.join(work, folder)):
        if "history.json" in files:
            path = os.path.join(d, "history.json")
            try:
                with open(path) as f:
                    lengths.append(len(json.load(f)["epochs"]))
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
                raise BadInput(f"{os.path.relpath(path, work)} is damaged ({type(e).__name__}); its step cannot "
                               f"resume: remove that step's folder from the results to train it afresh") from None
    return min(lengths, default=0)
