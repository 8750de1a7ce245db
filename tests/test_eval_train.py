"""--eval-train: each epoch also measures the training set in eval mode (no dropout). It must not change
the training (same train and val columns as the run without it), and what it records must be the loss
of the epoch's weights on the training images, computed independently here from last.* (with a
control: the train-mode running loss of the same epoch is not it)."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from experiment.data import load_cifar10
from experiment.split import make_splits
from tests.conftest import EXT, TRAIN, history_without_timings

RUN = ["--data", "synthetic:400", "--epochs", "2", "--model", "dropout", "--seed", "5", "--no-progress"]
EVAL_FIELDS = {"train_eval_loss", "train_eval_acc"}


def train_set_loss(fw, ckpt):
    """Loss and accuracy of a checkpoint's weights on the run's training images, in eval mode."""
    splits = make_splits(load_cifar10("synthetic:400"))
    if fw == "torch":
        from torch_ref.checkpoint import model_from_checkpoint
        from torch_ref.trainer import predict
        logits = predict(model_from_checkpoint(ckpt)[1], splits.train_x, torch.device("cpu"))
    else:
        from flax import nnx

        from flax_impl.evaluate import load_params
        _, network, params = load_params(ckpt)
        logits = torch.from_numpy(np.array(nnx.merge(network.graph, params)(splits.train_x)))
    y = torch.from_numpy(splits.train_y).long()
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_eval_train_measures_the_training_set_in_eval_mode_and_changes_nothing_else(fw, tmp_path):
    plain, measured = str(tmp_path / "plain"), str(tmp_path / "measured")
    TRAIN[fw]([*RUN, "--out", plain])
    TRAIN[fw]([*RUN, "--eval-train", "--out", measured])
    rows_plain = history_without_timings(os.path.join(plain, "dropout", "history.json"))[0]
    rows, h = history_without_timings(os.path.join(measured, "dropout", "history.json"))
    assert h["config"]["eval_train"] is True and all(set(r) - set(rows_plain[0]) == EVAL_FIELDS for r in rows)
    assert [{k: v for k, v in r.items() if k not in EVAL_FIELDS} for r in rows] == rows_plain  # training unchanged
    loss, acc = train_set_loss(fw, os.path.join(measured, "dropout", "last" + EXT[fw]))
    last = rows[-1]
    # float32 forward passes in other batch groupings (1,000-image evaluation batches vs the whole set): 1e-5.
    # An accuracy is a count of the 320 images (one image: 3e-3), divided in float32 or float64: 1e-6.
    assert abs(last["train_eval_loss"] - loss) < 1e-5 and abs(last["train_eval_acc"] - acc) < 1e-6
    assert abs(last["train_loss"] - loss) > 1e-3  # control: the train-mode running loss is another number


def test_a_run_resumes_with_its_eval_train_setting(tmp_path, capsys):
    out = str(tmp_path / "run")
    TRAIN["torch"]([*RUN, "--epochs", "1", "--eval-train", "--out", out])
    TRAIN["torch"](["--resume", out, "--epochs", "2"])
    rows = json.load(open(os.path.join(out, "dropout", "history.json")))["epochs"]
    assert [set(r) >= EVAL_FIELDS for r in rows] == [True, True]
