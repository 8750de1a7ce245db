"""The PyTorch reference: architecture, learning, determinism, outputs, evaluation."""
import json
import os

import pytest
import torch

from tests.conftest import history_without_timings
from torch_ref import evaluate, train
from torch_ref.models import BaseLineModel, DropoutModel, count_parameters


def test_parameter_counts_and_module_names():
    for m in (BaseLineModel(), DropoutModel()):
        assert count_parameters(m) == 62006
    names = [n for n, _ in DropoutModel().named_children()]
    assert names == ["conv1", "pool", "conv2", "dropout_1", "fc1", "dropout_2", "fc2", "dropout_3", "fc3"]
    assert BaseLineModel()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_dropout_only_in_train_mode():
    torch.manual_seed(0)
    m = DropoutModel()
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    assert torch.equal(m(x), m(x))
    m.train()
    assert not torch.equal(m(x), m(x))


def run(tmp_path, *extra, name="run", data="synthetic:2000"):
    out = str(tmp_path / name)
    train.main(["--data", data, "--out", out, "--no-progress", *extra])
    return out


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """Both models, one epoch on synthetic data: read by the tests below, never changed."""
    return run(tmp_path_factory.mktemp("torch"), "--model", "both", "--epochs", "1")


def test_one_epoch_on_synthetic_learns_and_writes_outputs(one_epoch):
    out = one_epoch
    for m in ("baseline", "dropout"):
        epochs, h = history_without_timings(os.path.join(out, m, "history.json"))
        assert h["framework"] == "torch" and h["model"] == m and h["best_epoch"] == 1
        assert h["versions"]["torch"] == torch.__version__
        for f in ("best.pt", "last.pt", "curves.png"):
            assert os.path.getsize(os.path.join(out, m, f)) > 0
    assert epochs[0]["val_acc"] > 0.3  # chance is 0.1
    _, h = history_without_timings(os.path.join(out, "baseline", "history.json"))
    assert h["epochs"][0]["val_acc"] > 0.5
    assert os.path.getsize(os.path.join(out, "curves.png")) > 0


def test_same_seed_same_history_other_seed_differs(tmp_path):
    runs = [run(tmp_path, "--model", "dropout", "--epochs", "2", "--seed", s, name=f"r{i}", data="synthetic:500")
            for i, s in enumerate(["5", "5", "6"])]
    a, b, c = (history_without_timings(os.path.join(r, "dropout", "history.json"))[0] for r in runs)
    assert a == b
    assert a != c


def test_evaluate_reports_accuracy_and_confusion_matrix(one_epoch, tmp_path):
    ckpt = os.path.join(one_epoch, "baseline", "best.pt")
    report = evaluate.main(["--ckpt", ckpt, "--data", "synthetic:2000", "--out", str(tmp_path / "ev")])
    assert report["test_acc"] > 0.5
    assert sum(map(sum, report["confusion_matrix"])) == report["n_test"] == 400
    assert os.path.getsize(tmp_path / "ev" / "confusion_matrix.png") > 0
    assert json.load(open(tmp_path / "ev" / "evaluation.json"))["test_acc"] == report["test_acc"]


@pytest.mark.slow  # real data
def test_short_run_on_real_data_beats_chance(tmp_path, real_data):
    out = str(tmp_path / "real")
    train.main(["--data", real_data, "--subset", "5000", "--epochs", "2", "--out", out, "--no-progress"])
    for m in ("baseline", "dropout"):
        _, h = history_without_timings(os.path.join(out, m, "history.json"))
        assert h["epochs"][-1]["val_acc"] > 0.18, (m, h["epochs"])  # chance is 0.10
    report = evaluate.main(["--ckpt", os.path.join(out, "baseline", "best.pt"), "--data", real_data])
    assert report["test_acc"] > 0.18
