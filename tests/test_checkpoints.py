"""Checkpoints load the ways their users load them: the tutorial's `load_state_dict(torch.load(...))`,
the tutorial's own `best_ckpt.pth` in both evaluate commands, and the plain-Flax snippet of docs/usage.md."""
import json
import os
import re
import shutil

import jax
import numpy as np
import pytest
import torch
from flax import nnx

from experiment.data import load_cifar10
from experiment.split import normalize
from flax_impl import evaluate as flax_evaluate
from tests.conftest import EVALUATE, EXT, REPO, TRAIN
from torch_ref.models import BaseLineModel, DropoutModel

DATA = "synthetic:600"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {fw: str(tmp_path_factory.mktemp(fw)) for fw in TRAIN}
    for fw, folder in out.items():
        TRAIN[fw](["--data", DATA, "--model", "dropout", "--epochs", "1", "--out", folder, "--no-progress"])
    return out


def test_the_tutorials_line_loads_best_pt(runs):
    model = DropoutModel()
    model.load_state_dict(torch.load(os.path.join(runs["torch"], "dropout", "best.pt")))  # no wrapper, no keys missing
    meta = json.load(open(os.path.join(runs["torch"], "dropout", "best.json")))
    assert (meta["model"], meta["dropout_rate"], meta["layout"]["fc1_inputs"]) == ("dropout", 0.5, "C,H,W")


def test_the_tutorials_own_state_dict_evaluates_alike_as_baseline_and_dropout(runs, tmp_path):
    weights = torch.load(os.path.join(runs["torch"], "dropout", "best.pt"))
    reports = []
    for cls in (BaseLineModel, DropoutModel):  # the tutorial saves whichever model it trained
        model = cls()
        model.load_state_dict(weights)
        path = str(tmp_path / f"{cls.__name__}" / "best_ckpt.pth")
        os.makedirs(os.path.dirname(path))
        torch.save(model.state_dict(), path)
        for fw, main in EVALUATE.items():
            reports.append(main(["--ckpt", path, "--data", DATA, "--out", str(tmp_path / f"{cls.__name__}-{fw}")]))
    assert len({json.dumps(r["confusion_matrix"]) for r in reports}) == 1


def test_flax_evaluate_tells_files_apart_by_content(runs, tmp_path):
    torch_as_msgpack = str(tmp_path / "weights.msgpack")
    flax_as_pt = str(tmp_path / "weights.pt")
    os.link(os.path.join(runs["torch"], "dropout", "best.pt"), torch_as_msgpack)
    os.link(os.path.join(runs["flax"], "dropout", "best.msgpack"), flax_as_pt)
    assert flax_evaluate.load_params(torch_as_msgpack)[0] == "LeNet (weights only)"  # PyTorch weights, no .json
    assert flax_evaluate.load_params(flax_as_pt)[0] == "dropout"


def readme_snippet(marker):
    text = open(os.path.join(REPO, "docs", "usage.md")).read()
    return re.search(rf"<!-- test: {marker} -->\n```python\n(.*?)```", text, re.S).group(1)


def test_the_readmes_plain_flax_snippet_predicts_as_the_project(runs):
    """The NNX LeNet of docs/usage.md, written without this project's code, loads best.msgpack and gives
    the project's logits; the same model flattening the natural NHWC way does not."""
    images = normalize(load_cifar10(DATA).test_x[:200])
    best = os.path.join(runs["flax"], "dropout", "best.msgpack")
    code = readme_snippet("plain-flax-loading").replace("runs/flax/dropout/best.msgpack", best)
    scope = {"images": images}
    exec(code, scope)
    _, network, params = flax_evaluate.load_params(best)
    want = np.asarray(nnx.merge(network.graph, params)(images))
    np.testing.assert_allclose(np.asarray(scope["logits"]), want, atol=1e-5)
    # Negative control: the natural flatten order runs without error and predicts otherwise (how often
    # depends on the trained weights: on these learnable synthetic images, from 1 in 10 predictions up).
    exec(code.replace("jnp.transpose(x, (0, 3, 1, 2)).reshape", "x.reshape"), scope)
    diff = np.abs(np.asarray(scope["logits"]) - want).max()
    agree = (np.asarray(scope["logits"]).argmax(1) == want.argmax(1)).mean()
    print(f"NHWC flatten: max |logit diff| {diff:.2e}, predictions agree {agree:.1%}")
    assert diff > 100 * 1e-5 and agree < 0.95, (diff, agree)
    assert jax.tree_util.tree_structure(scope["checkpoint"]["params"]) == jax.tree_util.tree_structure(params)


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_evaluate_computes_at_the_precision_the_checkpoint_was_trained_at(fw, run_copy, monkeypatch):
    """On a GPU each framework's own default is TF32 (JAX's matmuls, cuDNN's convolutions): a run
    trained at 'highest' must not be judged at another precision. Recorded in evaluation.json."""
    import jax

    from tests.test_hostile_files import edit_checkpoint_meta
    from torch_ref.precision import current_precision, set_precision
    out = run_copy(fw)
    ckpt = os.path.join(out, "baseline", "best" + EXT[fw])
    edit_checkpoint_meta(fw, ckpt, lambda m: m["config"].__setitem__("precision", "tf32"))
    asked, original = [], jax.default_matmul_precision
    monkeypatch.setattr(jax, "default_matmul_precision", lambda p: asked.append(p) or original(p))
    set_precision("highest")
    try:
        for flags, want in (([], "tf32"), (["--precision", "highest"], "highest")):
            asked.clear()
            report = EVALUATE[fw](["--ckpt", ckpt, "--data", "synthetic:300", *flags])
            assert report["precision"] == want
            if fw == "flax":
                assert set(asked) == {{"tf32": "tensorfloat32", "highest": "highest"}[want]}
            else:
                assert current_precision() == {"matmul": {"tf32": "tf32", "highest": "ieee"}[want]} | {
                    "conv": {"tf32": "tf32", "highest": "ieee"}[want]}
    finally:
        set_precision("highest")


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_evaluate_takes_several_checkpoints_after_one_flag_but_not_two_into_one_file(fw, run_copy, capsys):
    from tests.conftest import refused
    out = run_copy(fw)
    best, last = (os.path.join(out, "baseline", f"{k}{EXT[fw]}") for k in ("best", "last"))
    copy = os.path.join(out, "copy" + EXT[fw])
    shutil.copy(best, copy)
    EVALUATE[fw](["--ckpt", best, copy, "--data", "synthetic:300"])  # as a shell glob gives them
    assert os.path.exists(os.path.join(out, "evaluation.json"))
    err = refused(EVALUATE[fw], ["--ckpt", best, last, "--data", "synthetic:300"], out, capsys)
    assert "would both write" in err and "evaluation.json" in err
