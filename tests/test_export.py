"""python -m flax_impl.export: a Flax checkpoint as the tutorial's PyTorch state_dict and back, the
weights bit for bit, loadable the tutorial's way, evaluated alike; bad requests are one line."""
import os

import numpy as np
import pytest
import torch

from flax_impl import export
from flax_impl.evaluate import load_weights
from parity_tests.helpers import leaves
from tests.conftest import EVALUATE, TRAIN, refused
from torch_ref.models import DropoutModel


@pytest.fixture(scope="module")
def flax_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("flax") / "run")
    TRAIN["flax"](["--data", "synthetic:300", "--model", "dropout", "--epochs", "1", "--no-progress", "--out", out])
    return out


def test_flax_to_torch_and_back_is_exact(flax_run, capsys):
    best = os.path.join(flax_run, "dropout", "best.msgpack")
    export.main(["--ckpt", best, "--to", "dropout.pt"])
    model = DropoutModel()
    model.load_state_dict(torch.load("dropout.pt"))  # the tutorial's line
    export.main(["--ckpt", "dropout.pt", "--to", "back.msgpack"])
    (_, _, original, described), (_, _, back, again) = load_weights(best), load_weights("back.msgpack")
    assert all(np.array_equal(v, leaves(back)[k]) for k, v in leaves(original).items())
    assert again == described and described.model == "dropout" and described.epoch == 1
    reports = [EVALUATE[fw](["--ckpt", ckpt, "--data", "synthetic:300", "--out", f"ev-{fw}"])
               for fw, ckpt in (("flax", best), ("torch", "dropout.pt"))]
    assert reports[0]["predictions"] == reports[1]["predictions"]


def test_bad_requests_are_one_line(flax_run, capsys):
    best = os.path.join(flax_run, "dropout", "best.msgpack")
    open("taken.pt", "w").close()
    for argv, says in ((["--ckpt", best, "--to", "x.onnx"], "name a .pt, .pth or .msgpack file"),
                       (["--ckpt", best, "--to", "taken.pt"], "exists; pass --overwrite"),
                       (["--ckpt", "missing.msgpack", "--to", "y.pt"], "does not exist")):
        assert says in refused(export.main, argv, flax_run, capsys)


def test_a_pt_never_replaces_a_json_beside_it_that_was_not_named(flax_run, tmp_path, capsys):
    """--to X.pt also writes X.json (what the weights are): where X.json exists, say so and replace
    neither, unless --overwrite (which names both)."""
    folder = tmp_path / "torch-run"
    folder.mkdir()
    best_json = folder / "best.json"  # a PyTorch run's best.pt description
    best_json.write_text('{"model": "baseline"}\n')
    best = os.path.join(flax_run, "dropout", "best.msgpack")
    err = refused(export.main, ["--ckpt", best, "--to", str(folder / "best.pth")], str(folder), capsys)
    assert f"{best_json} exists" in err and "--overwrite" in err
    export.main(["--ckpt", best, "--to", str(folder / "best.pth"), "--overwrite"])
    assert '"exported_from": "best.msgpack"' in best_json.read_text()
    assert f"wrote {folder / 'best.pth'} and {best_json}" in capsys.readouterr().out
