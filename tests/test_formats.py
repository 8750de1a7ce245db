"""Files written by the previous version of the project (format 1: no "format" key; train states
keyed by one model and its seeds) still load: a run of format-1 files resumes to the same history
as an uninterrupted run, and a format-1 checkpoint evaluates. A newer format is refused by name."""
import importlib
import json
import os

import pytest
import torch
from flax import serialization

from experiment.frameworks import FRAMEWORKS
from tests.conftest import history_without_timings

RUN = ["--data", "synthetic:300", "--model", "dropout", "--seed", "3", "--no-progress"]


def main(fw, which="train"):
    return importlib.import_module(getattr(FRAMEWORKS[fw], which)).main


def downgrade_train_state(fw, path):
    """Rewrite a train state as the previous version wrote it."""
    if fw == "torch":
        new = torch.load(path, weights_only=True)
        old = {"framework": "torch", "kind": "train_state", "model": new["lanes"][0]["model"],
               "seeds": [x["seed"] for x in new["lanes"]], "epoch": new["epoch"], "lanes": new["states"],
               "histories": new["histories"]}
        torch.save(old, path)
        return
    new = serialization.msgpack_restore(open(path, "rb").read())
    lanes = json.loads(new["lanes"])
    old = {"framework": "flax", "kind": "train_state", "model": lanes[0]["model"],
           "seeds": json.dumps([x["seed"] for x in lanes]), "epoch": new["epoch"], "state": new["state"],
           "histories": new["histories"]}
    open(path, "wb").write(serialization.msgpack_serialize(old))


def downgrade_run_file(out):
    path = os.path.join(out, "run.json")
    run = json.load(open(path))
    del run["format"]
    json.dump(run, open(path, "w"))


@pytest.mark.slow  # trains, stops and resumes a run in each framework
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_run_of_the_previous_format_resumes_exactly(fw, tmp_path):
    ref, out = str(tmp_path / "ref"), str(tmp_path / "old")
    main(fw)([*RUN, "--epochs", "2", "--out", ref])
    main(fw)([*RUN, "--epochs", "1", "--out", out])
    downgrade_train_state(fw, os.path.join(out, "dropout", "train_state" + FRAMEWORKS[fw].ckpt_ext))
    downgrade_run_file(out)
    main(fw)(["--resume", out, "--epochs", "2"])
    got = history_without_timings(os.path.join(out, "dropout", "history.json"))[0]
    assert got == history_without_timings(os.path.join(ref, "dropout", "history.json"))[0]
    assert len(got) == 2


def edit_train_state(fw, path, change):
    if fw == "torch":
        raw = torch.load(path, weights_only=True)
        change(raw)
        torch.save(raw, path)
        return raw
    raw = serialization.msgpack_restore(open(path, "rb").read())
    change(raw)
    open(path, "wb").write(serialization.msgpack_serialize(raw))
    return raw


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_run_from_before_run_ids_resumes_and_gets_an_id(fw, tmp_path, capsys):
    """run.json and train states of format 2 as written before they named their run and where its data
    is from the run folder: the train state is taken as the run's, which has an id from then on, and the
    data is the one run.json recorded."""
    out = str(tmp_path / "run")
    main(fw)([*RUN, "--epochs", "1", "--out", out])
    state = os.path.join(out, "dropout", "train_state" + FRAMEWORKS[fw].ckpt_ext)
    edit_train_state(fw, state, lambda raw: raw.pop("run_id"))
    run_file = os.path.join(out, "run.json")
    run = json.load(open(run_file))
    del run["run_id"], run["data"]["source_from_run"]
    json.dump(run, open(run_file, "w"))
    capsys.readouterr()
    main(fw)(["--resume", out, "--epochs", "2"])
    assert "resuming at epoch 2" in capsys.readouterr().out
    run_id = json.load(open(run_file))["run_id"]
    assert len(run_id) == 16 and edit_train_state(fw, state, lambda raw: None)["run_id"] == run_id


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_newer_formats_are_refused_by_version(fw, tmp_path, capsys):
    out = str(tmp_path / "run")
    main(fw)([*RUN, "--epochs", "1", "--out", out])
    path = os.path.join(out, "run.json")
    run = json.load(open(path))
    run["format"] = 99
    json.dump(run, open(path, "w"))
    with pytest.raises(SystemExit):
        main(fw)(["--resume", out, "--epochs", "2"])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run.json has format 99, written by a newer version" in err
