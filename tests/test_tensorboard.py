"""TensorBoard events beside every lane's history.json (experiment.tensorboard), read back with
TensorBoard's own reader: every scalar of every epoch is history.json's, in both frameworks and with
lanes, the settings are the lane's hyperparameters, a resumed run shows each epoch once (also one a
killed run wrote but never committed, or whose events it lost), a cut event file stays readable, and a
run without tensorboard says so once and trains on."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from experiment import tensorboard
from tests.conftest import REPO, TRAIN

LANES = ["--data", "synthetic:300", "--dropout-rates", "0,0.5", "--seeds", "1,2", "--no-progress"]
ONE_LANE = ["--data", "synthetic:300", "--model", "dropout", "--no-progress"]


def read_board(folder):
    accumulator = EventAccumulator(folder)
    accumulator.Reload()
    return accumulator


def shown(folder):
    """{tag: [(epoch, value), ...]} of the scalars TensorBoard shows for a lane's folder."""
    board = read_board(folder)
    return {tag: [(e.step, e.value) for e in board.Scalars(tag)] for tag in board.Tags()["scalars"]}


def history_of(folder):
    return json.load(open(os.path.join(folder, "history.json")))


def from_history(history):
    """{tag: [(epoch, value as TensorBoard stores it: float32), ...]} of a history's epochs."""
    want = {}
    for row in history["epochs"]:
        for tag, value in tensorboard.scalars(row).items():
            want.setdefault(tag, []).append((row["epoch"], float(np.float32(value))))
    return want


def differences(folder):
    """What TensorBoard shows for the folder that its history.json does not say (empty: nothing)."""
    got, want = shown(folder), from_history(history_of(folder))
    return [f"{tag}: {got.get(tag)} != {want.get(tag)}" for tag in sorted(set(got) | set(want))
            if got.get(tag) != want.get(tag)]


def hyperparameters_shown(folder):
    content = read_board(folder).SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    info = hparams_metadata.parse_session_start_info_plugin_data(content)
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}


def lane_folders(out):
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(out, "**", "history.json"), recursive=True))


def test_every_lanes_events_are_its_history_with_its_settings(tmp_path):
    out = str(tmp_path / "run")
    TRAIN["flax"]([*LANES, "--epochs", "2", "--eval-train", "--out", out])
    folders = lane_folders(out)
    assert len(folders) == 4
    for folder in folders:
        h = history_of(folder)
        assert differences(folder) == [], folder
        assert {"loss/train_eval", "acc/val", "seconds"} <= set(shown(folder))
        settings = hyperparameters_shown(folder)
        assert (settings["seed"], settings["dropout_rate"], settings["model"]) == (h["seed"], h["config"]["dropout_rate"],
                                                                                  h["model"])
        assert settings == tensorboard.hyperparameters(h)
    # Negative control: a history that says another value for one epoch is told apart.
    h = history_of(folders[0])
    h["epochs"][1]["val_loss"] += 1e-3
    json.dump(h, open(os.path.join(folders[0], "history.json"), "w"))
    assert differences(folders[0])


@pytest.mark.parametrize("engine", ["tutorial", "vmap"])
def test_torch_runs_write_the_same_events(tmp_path, engine):
    out = str(tmp_path / engine)
    TRAIN["torch"]([*LANES, "--epochs", "2", "--engine", engine, "--out", out])
    folders = lane_folders(out)
    assert len(folders) == 4 and all(differences(f) == [] for f in folders)
    assert hyperparameters_shown(folders[0])["framework"] == "torch"


def write_stale_epoch(folder):
    """The events of an epoch 2 that a killed run wrote and never committed (its own file, other values)."""
    h = history_of(folder)
    stale = dict(h["epochs"][0], epoch=2, val_loss=99.0)
    board = tensorboard.LaneBoard(folder)
    board.show({**h, "epochs": [h["epochs"][0], stale], "resumed": []})
    board.close()


@pytest.mark.slow  # a run, its stale and lost epochs, two resumes
def test_a_resumed_run_shows_each_epoch_once(tmp_path):
    """After a kill: one lane's folder holds an epoch 2 that was written but never committed, another
    lost its events; resumed, both show epochs 1 and 2 of history.json, once each."""
    out = str(tmp_path / "run")
    TRAIN["flax"]([*LANES, "--epochs", "1", "--out", out])
    stale, lost, *_ = lane_folders(out)
    write_stale_epoch(stale)
    for path in glob.glob(os.path.join(lost, tensorboard.EVENT_FILES)):
        os.remove(path)
    assert shown(stale)["loss/val"][-1] == (2, 99.0)  # control: the reader sees the stale epoch
    TRAIN["flax"](["--resume", out, "--epochs", "2", "--no-progress"])
    for folder in lane_folders(out):
        assert [e for e, _ in shown(folder)["loss/val"]] == [1, 2]
        assert differences(folder) == [], folder


def test_a_cut_event_file_is_read_up_to_the_cut(tmp_path):
    """A kill in the middle of a write leaves a partial record at the end of the file: the epochs
    before it still read."""
    out = str(tmp_path / "run")
    TRAIN["flax"]([*ONE_LANE, "--epochs", "2", "--out", out])
    folder = os.path.join(out, "dropout")
    path, = glob.glob(os.path.join(folder, tensorboard.EVENT_FILES))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 5)
    got = shown(folder)
    assert got["loss/val"] == from_history(history_of(folder))["loss/val"]  # epoch 2's last record was seconds
    assert len(got["seconds"]) == 1


def test_a_fresh_run_replaces_the_folders_events(tmp_path):
    out = str(tmp_path / "run")
    TRAIN["flax"]([*ONE_LANE, "--epochs", "2", "--out", out])
    TRAIN["flax"]([*ONE_LANE, "--epochs", "1", "--seed", "3", "--out", out, "--overwrite"])
    folder = os.path.join(out, "dropout")
    assert len(glob.glob(os.path.join(folder, tensorboard.EVENT_FILES))) == 1
    assert differences(folder) == [] and len(shown(folder)["loss/val"]) == 1


def test_without_tensorboard_a_run_says_so_once_and_trains_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tensorboard, "EventFileWriter", None)
    monkeypatch.setattr(tensorboard, "_told", [])
    out = str(tmp_path / "run")
    TRAIN["flax"]([*LANES, "--epochs", "2", "--out", out])
    err = capsys.readouterr().err
    assert err.count(tensorboard.MISSING) == 1, err
    folders = lane_folders(out)
    assert len(folders) == 4 and all(len(history_of(f)["epochs"]) == 2 for f in folders)
    assert not glob.glob(os.path.join(out, "**", tensorboard.EVENT_FILES), recursive=True)
    shutil.rmtree(out)


@pytest.mark.slow  # a real process, killed
def test_a_killed_run_leaves_readable_events_and_its_resume_shows_each_epoch_once(tmp_path):
    out = str(tmp_path / "run")
    argv = [sys.executable, "-m", "flax_impl.train", *LANES, "--epochs", "6", "--out", out]
    p = subprocess.Popen(argv, cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if "epoch 3/" in line:
            break
    p.send_signal(signal.SIGKILL)
    p.wait()
    for folder in lane_folders(out):  # what was written reads, each epoch as history.json has it (or not yet)
        got, want = shown(folder), from_history(history_of(folder))
        assert all(values == want[tag][:len(values)] for tag, values in got.items()), folder
        assert len(got["loss/val"]) >= 2
    TRAIN["flax"](["--resume", out, "--no-progress"])
    for folder in lane_folders(out):
        assert [e for e, _ in shown(folder)["loss/val"]] == [1, 2, 3, 4, 5, 6]
        assert differences(folder) == [], folder
