"""Argument types the benchmark runners share: a bad value is argparse's one line (`prog: error: ...`,
exit 2) before anything runs, never a traceback, nor a row recorded as "skipped"."""
import argparse
import os
import shutil

from experiment.cli import list_of, positive_int
from experiment.runfile import RUN_FILE


def int_list(item=positive_int, what="positive integers like 64,128"):
    """Comma-separated, each checked by `item`, none repeated."""
    return list_of(item, what)


def name_list(known):
    """Comma-separated names, each one of `known`, none repeated."""
    def parse(text):
        names = text.split(",")
        bad = [n for n in names if n not in known]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, bad))}; known: {', '.join(known)}")
        if len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"repeated name in {text!r}")
        return names
    return parse


def out_folder(p, path, flag="--out"):
    """Refuse an output folder that is an existing file (or under one) before anything runs."""
    head = path
    while head and not os.path.exists(head):
        head = os.path.dirname(head)
    if head and not os.path.isdir(head):
        p.error(f"{flag} {path!r}: {head!r} is a file, not a folder")


def data_source(p, data, flag="--data"):
    """Refuse a --data that is neither synthetic:N nor an existing path, before anything runs (the
    training command would refuse it only after the runner had started)."""
    if data is not None and data not in NAMED and not data.startswith("synthetic:") and not os.path.exists(data):
        p.error(f"{flag} {data!r}: no such file or folder")


NAMED = ("synthetic", "tfds", "download")  # data sources that are not paths (experiment.data)


def data_key(source):
    """What a data source is compared by: a named source by its name, a file by its name and size (the
    same archive at another path, as on another machine, is the same data), a folder by its real path;
    None for a path that is not there (nothing to compare: not judged a clash)."""
    from experiment.data import default_source
    source = source or default_source()
    if source in NAMED or source.startswith("synthetic:"):
        return source
    if os.path.isfile(source):
        return ("file", os.path.basename(source), os.path.getsize(source))
    return ("folder", os.path.realpath(source)) if os.path.isdir(source) else None


def clash(h, batch_size, data):
    """Why a finished run's history cannot stand for a run at this batch size on this data (None if it
    can): its settings are what it was trained with, never relabelled."""
    cfg, recorded = h.get("config") or {}, (h.get("data") or {}).get("source")
    if cfg.get("batch_size") != batch_size:
        return f"was trained at batch {cfg.get('batch_size')}, not {batch_size}"
    mine, given = data_key(cfg.get("data") or recorded) if recorded != "cached arrays" else None, data_key(data)
    if recorded is not None and None not in (mine, given) and mine != given:
        return f"was trained on {cfg.get('data') or recorded!r}, not {data or 'the default data'!r}"
    return None


def last_line(text):
    """The last non-empty line of a failed command's output (its one-line error), printable."""
    lines = [x for x in (text or "").splitlines() if x.strip()]
    return lines[-1].strip().encode("ascii", "backslashreplace").decode() if lines else "no output"


def clear_for_training(run_folder, lane_folders):
    """Before a runner trains lanes afresh in a folder that gathers the lanes of several runs (a
    convergence run's seeds, a sweep's rates): the folders of those lanes go (they are trained
    again), and so does run.json, which described the run before only. The lanes beside stay; the
    training command needs no --overwrite, which would refuse to leave them beside a run that does
    not train them."""
    for folder in lane_folders:
        shutil.rmtree(folder, ignore_errors=True)
    if os.path.exists(os.path.join(run_folder, RUN_FILE)):
        os.remove(os.path.join(run_folder, RUN_FILE))
