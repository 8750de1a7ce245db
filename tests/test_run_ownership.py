"""A run's files belong to it: --resume refuses a train state written by another run (even one of
the same lanes), a run whose lane folder was renamed or removed, and --overwrite refuses to leave
lanes of the run it replaces beside the new one's. Each refusal is one line, exit 2, and changes
nothing."""
import os
import shutil

import pytest

from tests.conftest import EXT, TINY_RUN, TRAIN, copier, refused, train_each

RESUME = ["--epochs", "2", "--no-progress"]
BOTH = ["--data", "synthetic:300", "--model", "both", "--seeds", "0,1", "--epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory):
    """A finished run of both models and seeds 0,1 per framework (Flax: one train state for all four
    lanes in OUT; PyTorch: one per model folder)."""
    return train_each(tmp_path_factory, BOTH)


@pytest.fixture
def seeded_copy(seeded_runs, tmp_path):
    return copier(seeded_runs, tmp_path, "seeded")


@pytest.mark.slow  # a second training run
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_resume_refuses_the_train_state_of_another_run_with_the_same_lanes(fw, run_copy, tmp_path, capsys):
    out, other = run_copy(fw), str(tmp_path / "other")
    TRAIN[fw]([*TINY_RUN, "--lr", "0.01", "--out", other])  # the same lane, another learning rate
    state = os.path.join("baseline", "train_state" + EXT[fw])
    own = open(os.path.join(out, state), "rb").read()
    shutil.copy(os.path.join(other, state), os.path.join(out, state))
    err = refused(TRAIN[fw], ["--resume", out, *RESUME], out, capsys)
    assert f"{os.path.join(out, state)} belongs to another run" in err
    open(os.path.join(out, state), "wb").write(own)  # control: its own train state resumes
    TRAIN[fw](["--resume", out, *RESUME])
    assert "resuming at epoch 2" in capsys.readouterr().out


@pytest.mark.slow  # reads runs of two seeds trained for the file
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_resume_refuses_a_run_whose_lane_folder_was_renamed(fw, seeded_copy, capsys):
    out = seeded_copy(fw)
    lane = os.path.join(out, "dropout", "seed_1")
    os.rename(lane, lane + "-old")
    err = refused(TRAIN[fw], ["--resume", out, *RESUME], out, capsys)
    assert f"{lane} is missing" in err
    os.rename(lane + "-old", lane)  # control: put back, the run resumes
    TRAIN[fw](["--resume", out, *RESUME])
    assert "resuming at epoch 2" in capsys.readouterr().out


@pytest.mark.slow  # reads runs of two seeds trained for the file
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_overwrite_refuses_to_leave_lanes_of_the_run_it_replaces(fw, seeded_copy, capsys):
    out = seeded_copy(fw)
    fewer = [a if a != "0,1" else "0" for a in BOTH]
    err = refused(TRAIN[fw], [*fewer, "--out", out, "--overwrite"], out, capsys)
    assert os.path.join(out, "baseline", "seed_1") in err and "--overwrite" in err
    for model in ("baseline", "dropout"):  # control: without them, the run is replaced
        shutil.rmtree(os.path.join(out, model, "seed_1"))
    TRAIN[fw]([*fewer, "--out", out, "--overwrite"])
    assert sorted(os.listdir(os.path.join(out, "dropout"))) == ["curves_mean_std.png", "seed_0"] + (
        ["train_state.pt"] if fw == "torch" else [])
