"""The Flax implementation: shapes, conversion, learning, determinism, dropout, CLI outputs."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from flax_impl import evaluate as flax_evaluate
from flax_impl import train as flax_train
from flax_impl.convert import flax_to_torch, torch_to_flax
from flax_impl.models import Network, count_parameters
from flax_impl.ops import conv_valid, max_pool_2x2
from flax_impl.steps import init_state, logits_of, make_optimizer
from tests.conftest import history_without_timings
from torch_ref import train as torch_train
from torch_ref.models import build_model as build_torch

X = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("name", ["baseline", "dropout"])
def test_shapes_and_parameter_count(name):
    network = Network(name)
    params = init_state(network, make_optimizer(1e-3), 0)["params"]
    assert count_parameters(params) == 62006
    assert logits_of(network.graph, params, jnp.asarray(X)).shape == (8, 10)
    assert sorted(params) == ["conv1", "conv2", "fc1", "fc2", "fc3"]


@pytest.mark.parametrize("name", ["baseline", "dropout"])
def test_conversion_round_trip_is_exact(name):
    sd = build_torch(name).state_dict()
    back = flax_to_torch(torch_to_flax(sd))
    assert back.keys() == sd.keys()
    for k in sd:
        assert torch.equal(back[k], sd[k]), k


def test_converted_weights_give_pytorch_logits():
    torch.manual_seed(0)
    tm = build_torch("baseline").eval()
    with torch.no_grad():
        want = tm(torch.from_numpy(X.transpose(0, 3, 1, 2).copy())).numpy()
    got = np.asarray(logits_of(Network("baseline").graph, torch_to_flax(tm.state_dict()), jnp.asarray(X)))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_matmul_and_xla_formulations_agree():
    k = jax.random.normal(jax.random.PRNGKey(1), (5, 5, 3, 6))
    b = jnp.arange(6.0)
    x = jnp.asarray(X)
    np.testing.assert_allclose(conv_valid(x, k, b, "matmul"), conv_valid(x, k, b, "xla"), rtol=1e-5, atol=1e-5)
    h = conv_valid(x, k, b, "xla")
    np.testing.assert_array_equal(max_pool_2x2(h, "matmul"), max_pool_2x2(h, "xla"))


def test_dropout_is_identity_in_eval_and_random_in_train():
    network = Network("dropout")
    params = init_state(network, make_optimizer(1e-3), 0)["params"]
    x = jnp.asarray(X)
    a = logits_of(network.graph, params, x)
    np.testing.assert_array_equal(a, logits_of(network.graph, params, x))
    k = jax.random.PRNGKey(3)
    t1 = logits_of(network.graph, params, x, 0.5, k)
    t2 = logits_of(network.graph, params, x, 0.5, k)
    t3 = logits_of(network.graph, params, x, 0.5, jax.random.PRNGKey(4))
    np.testing.assert_array_equal(t1, t2)
    assert not np.allclose(t1, t3) and not np.allclose(t1, a)


def run(tmp_path, *extra, name="run"):
    out = str(tmp_path / name)
    flax_train.main(["--data", "synthetic:2000", "--out", out, "--no-progress", *extra])
    return out


@pytest.mark.slow  # a whole training command, both models
def test_one_epoch_learns_and_writes_torch_ref_outputs(tmp_path):
    out = run(tmp_path, "--epochs", "1", "--batch-size", "48")  # 1600 = 33 x 48 + 16: a partial batch
    for m in ("baseline", "dropout"):
        epochs, h = history_without_timings(os.path.join(out, m, "history.json"))
        assert h["framework"] == "flax" and h["versions"]["jax"] == jax.__version__
        assert epochs[0]["val_acc"] > 0.5, (m, epochs)
        for f in ("best.msgpack", "last.msgpack", "curves.png"):
            assert os.path.getsize(os.path.join(out, m, f)) > 0
    assert os.path.getsize(os.path.join(out, "curves.png")) > 0


@pytest.mark.slow  # three training commands
def test_same_seed_bit_identical_other_seed_differs(tmp_path):
    runs = [run(tmp_path, "--model", "dropout", "--epochs", "2", "--seed", s, name=f"r{i}")
            for i, s in enumerate(["1", "1", "2"])]
    a, b, c = (history_without_timings(os.path.join(r, "dropout", "history.json"))[0] for r in runs)
    assert a == b and a != c


@pytest.mark.slow  # two training commands, two compilations
def test_scan_and_per_step_epochs_agree(tmp_path):
    a = run(tmp_path, "--model", "dropout", "--epochs", "1", "--fuse", "scan", name="scan")
    b = run(tmp_path, "--model", "dropout", "--epochs", "1", "--fuse", "step", name="step")
    ea, eb = (history_without_timings(os.path.join(r, "dropout", "history.json"))[0][0] for r in (a, b))
    for k in ("train_loss", "val_loss"):
        assert abs(ea[k] - eb[k]) < 1e-4, (ea, eb)


def test_evaluate_flax_and_torch_checkpoints_agree(tmp_path):
    out = str(tmp_path / "t")
    torch_train.main(["--data", "synthetic:2000", "--out", out, "--model", "baseline", "--epochs", "1",
                      "--no-progress"])
    ckpt = os.path.join(out, "baseline", "best.pt")
    from torch_ref import evaluate as torch_evaluate
    r_t = torch_evaluate.main(["--ckpt", ckpt, "--data", "synthetic:2000", "--out", str(tmp_path / "et")])
    r_f = flax_evaluate.main(["--ckpt", ckpt, "--data", "synthetic:2000", "--out", str(tmp_path / "ef")])
    assert r_t["confusion_matrix"] == r_f["confusion_matrix"]
    fout = run(tmp_path, "--model", "baseline", "--epochs", "1", name="f")
    r = flax_evaluate.main(["--ckpt", os.path.join(fout, "baseline", "best.msgpack"), "--data", "synthetic:2000"])
    assert r["test_acc"] > 0.5


def test_bad_flax_checkpoint(tmp_path, capsys):
    bad = tmp_path / "x.msgpack"
    bad.write_bytes(os.urandom(300))
    with pytest.raises(SystemExit) as e:
        flax_evaluate.main(["--ckpt", str(bad), "--data", "synthetic:500"])
    assert e.value.code == 2
    assert "not a readable Flax checkpoint" in capsys.readouterr().err
