"""The PyTorch engines (--engine fast, vmap, cudagraph, vmap-cudagraph) against the tutorial engine: the same maths
step by step (float64), the same dropout in distribution, the same files, resumable, one-line
refusals. CPU only, except the two CUDA tests at the end."""
import fnmatch
import json
import os

import numpy as np
import pytest
import torch
from torch.func import vmap

from experiment.lanes import Lane
from experiment.sources.synthetic import make_synthetic
from experiment.split import EpochBatches, make_splits
from experiment.tensorboard import EVENT_FILES
from tests.conftest import history_without_timings
from torch_ref import evaluate, train
from torch_ref.engines import ENGINES, make_trainer
from torch_ref.models import dropout
from torch_ref.precision import current_precision, set_precision

# 152 training images in batches of 16: 9 full batches and one of 8 per epoch; 20 epochs = 200 steps.
SPLITS = make_splits(make_synthetic(190, 20, seed=3))
BATCH, EPOCHS = 16, 20
# Float64 takes rounding below anything Adam's eps lets through (parity_tests/test_trajectories.py):
# the same algorithm agrees to ~1e-14; 1e-10 leaves room and still catches a 1e-6 change of lr.
F64_ATOL = 1e-10
# The BaseLine, and a Dropout lane with its dropout off (rate 0: the identity, no masks drawn).
NO_DROPOUT = [Lane("baseline", 0.0, 0, "baseline"), Lane("dropout", 0.0, 1, "dropout")]
TINY = ["--data", "synthetic:300", "--batch-size", "32", "--no-progress"]


pytestmark = pytest.mark.usefixtures("torch_on_one_thread")


@pytest.fixture(autouse=True)
def torch_settings():
    """Engines set process-wide modes; put back what the next test expects."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = False
    set_precision("highest")


class LossRecorder:
    """The tutorial engine's loss function, recording each step's loss (it keeps none itself)."""

    def __init__(self, loss_fn):
        self.loss_fn, self.losses = loss_fn, []

    def __call__(self, logits, y):
        loss = self.loss_fn(logits, y)
        self.losses.append(loss.item())
        return loss


def trajectory(engine, lanes, epochs=EPOCHS, splits=SPLITS, dtype=torch.float64, **settings):
    """Per-step training losses [lanes, steps] and the final snapshot of an engine's trainer."""
    config = train.default(batch_size=BATCH, no_progress=True, **settings)
    trainer = ENGINES[engine](config, lanes, splits, dtype=dtype)
    n, losses = len(splits.train_x), []
    for epoch in range(1, epochs + 1):
        batches = EpochBatches.of_lanes(lanes, n, epoch, BATCH)
        if engine == "tutorial":
            trainer.loss_fn = LossRecorder(trainer.loss_fn)
            trainer.train_epoch(epoch, batches)
            losses.append(np.reshape(trainer.loss_fn.losses, (len(lanes), -1)))
        else:
            losses.append(trainer.train_steps(epoch, batches)["loss"])
    return np.concatenate(losses, axis=1), trainer.snapshot()


def max_diffs(a, b):
    """(max per-step loss difference, max parameter difference) of two trajectories."""
    (loss_a, snap_a), (loss_b, snap_b) = a, b
    params = max((sa["model"][k] - sb["model"][k]).abs().max().item()
                 for sa, sb in zip(snap_a, snap_b) for k in sa["model"])
    return np.abs(loss_a - loss_b).max(), params


@pytest.fixture(scope="module")
def tutorial_f64():
    return trajectory("tutorial", NO_DROPOUT)


@pytest.mark.parametrize("engine", ["fast", "vmap"])
def test_float64_steps_equal_tutorial(engine, tutorial_f64):
    losses, snapshot = run = trajectory(engine, NO_DROPOUT)
    assert losses.shape == (2, 200)
    loss_diff, param_diff = max_diffs(run, tutorial_f64)
    print(f"{engine} vs tutorial, float64, 200 steps: max loss diff {loss_diff:.1e}, max param diff {param_diff:.1e}")
    assert loss_diff <= F64_ATOL and param_diff <= F64_ATOL
    # Snapshots in the tutorial's layout: same names, shapes and optimizer state, near-equal values.
    for mine, ref in zip(snapshot, tutorial_f64[1]):
        assert {k: v.shape for k, v in mine["model"].items()} == {k: v.shape for k, v in ref["model"].items()}
        for i, state in ref["optimizer"]["state"].items():
            assert set(mine["optimizer"]["state"][i]) == set(state)
            for k, v in state.items():
                assert mine["optimizer"]["state"][i][k].shape == v.shape
                assert (mine["optimizer"]["state"][i][k] - v).abs().max() <= F64_ATOL
        assert set(mine["optimizer"]["param_groups"][0]) == set(ref["optimizer"]["param_groups"][0])


def test_fast_equals_tutorial_with_dropout_on_cpu():
    """With dropout on, the fast engine draws each lane's masks from that lane's own stream in the
    tutorial's order: on CPU, every step is the tutorial's, bit for bit."""
    lanes = [Lane("dropout", 0.5, 3, "dropout"), Lane("dropout", 0.25, 4, "dropout_0.25")]
    (fast, fast_snap), (ref, ref_snap) = (trajectory(e, lanes, 3, dtype=torch.float32) for e in ("fast", "tutorial"))
    assert np.array_equal(fast, ref)
    assert all(torch.equal(v, r["model"][k]) for f, r in zip(fast_snap, ref_snap) for k, v in f["model"].items())


def test_negative_control_float64_check_catches_a_tiny_lr_change(tutorial_f64):
    """A vmap run whose Adam lr is 1e-6 (relative) off: the same check fails by far."""
    loss_diff, param_diff = max_diffs(trajectory("vmap", NO_DROPOUT, lr=1e-3 * (1 + 1e-6)), tutorial_f64)
    print(f"negative control (lr x (1 + 1e-6)): max loss diff {loss_diff:.1e}, max param diff {param_diff:.1e}")
    assert param_diff > 100 * F64_ATOL


# Keep fraction of 200,000 Bernoulli draws: std <= 0.0011, so 0.006 is over 5 sigma.
KEEP_ATOL = 0.006


def test_vmap_dropout_masks_are_per_lane_rate_and_fresh():
    rates = torch.tensor([0.5, 0.5, 0.25, 0.0])
    x = torch.rand(len(rates), 200_000) + 0.5  # no zeros, so zero means dropped
    out = vmap(dropout, randomness="different")(x, rates)
    kept = out != 0
    for lane, rate in enumerate(rates.tolist()):
        assert abs(kept[lane].float().mean().item() - (1 - rate)) < KEEP_ATOL
        assert torch.equal(out[lane][kept[lane]], x[lane][kept[lane]] / (1 - rate))  # nn.Dropout's scaling
    assert torch.equal(out[3], x[3])  # rate 0: the identity, bit for bit
    agree = (kept[0] == kept[1]).float().mean().item()  # two lanes at 0.5: independent masks
    assert abs(agree - 0.5) < KEEP_ATOL


def test_vmap_dropout_matches_tutorial_in_distribution():
    """With dropout on, the engines draw different masks, so losses differ step by step but not in
    distribution. 8 Dropout lanes, 2 epochs of 6 steps (float32): the mean loss's difference between
    the engines was 0.001-0.002 over 3 sets of seeds (per-lane means spread ~0.007, so the mean of 8
    ~0.0025); 0.02 is ~8 of those, while turning dropout off moves the mean by ~0.15."""
    splits = make_splits(make_synthetic(240, 20, seed=3))
    lanes = [Lane("dropout", 0.5, s, "dropout") for s in range(8)]
    run = {engine: trajectory(engine, lanes, 2, splits, torch.float32)[0] for engine in ("tutorial", "vmap")}
    off = trajectory("vmap", [Lane("dropout", 0.0, s, "dropout") for s in range(8)], 2, splits, torch.float32)[0]
    print(f"mean loss: tutorial {run['tutorial'].mean():.4f}, vmap {run['vmap'].mean():.4f}, "
          f"vmap without dropout {off.mean():.4f}")
    assert abs(run["vmap"].mean() - run["tutorial"].mean()) < 0.02
    assert abs(off.mean() - run["tutorial"].mean()) > 0.05  # the check sees dropout at all
    assert not np.array_equal(run["vmap"], run["tutorial"])  # masks are drawn, not copied


def test_vmap_lanes_of_one_seed_draw_different_masks():
    """Two identical Dropout lanes (same init, same batches) differ only by their masks."""
    same = [Lane("dropout", 0.5, 7, "dropout")] * 2
    losses = trajectory("vmap", same, 1, dtype=torch.float32)[0]
    assert not np.array_equal(losses[0], losses[1])
    losses = trajectory("tutorial", same, 1, dtype=torch.float32)[0]
    assert np.array_equal(losses[0], losses[1])  # the tutorial engine: each lane its own stream


def run_cli(out, *flags):
    train.main([*TINY, "--out", str(out), *flags])
    return str(out)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def files(folder):
    """The files under folder; an event file by its pattern (its name holds the time and the process)."""
    named = lambda f: EVENT_FILES if fnmatch.fnmatch(f, EVENT_FILES) else f  # noqa: E731
    return sorted(os.path.relpath(os.path.join(r, named(f)), folder) for r, _, fs in os.walk(folder) for f in fs)


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory):
    return run_cli(tmp_path_factory.mktemp("tutorial") / "run", "--epochs", "1")


@pytest.mark.parametrize("engine", ["fast", "vmap"])
def test_cli_engine_writes_the_tutorial_files_and_its_checkpoints_evaluate(engine, tutorial_run, tmp_path):
    ref, out = tutorial_run, run_cli(tmp_path / engine, "--epochs", "1", "--engine", engine)
    want = set(files(ref))
    if engine == "vmap":  # one trainer for both groups: its train state sits in OUT (experiment.lanes)
        want = want - {"baseline/train_state.pt", "dropout/train_state.pt"} | {"train_state.pt"}
    assert files(out) == sorted(want)
    for model in ("baseline", "dropout"):
        h = read_json(os.path.join(out, model, "history.json"))
        assert h["config"]["engine"] == engine and h["versions"]["torch_deterministic_algorithms"] is False
        report = evaluate.main(["--ckpt", os.path.join(out, model, "best.pt"), "--data", "synthetic:300",
                                "--out", str(tmp_path / f"eval-{model}")])
        assert report["model"] == model and report["n_test"] == 60
    assert read_json(os.path.join(ref, "baseline", "history.json"))["versions"]["torch_deterministic_algorithms"]


@pytest.mark.slow  # two training runs per engine
@pytest.mark.parametrize("engine", ["fast", "vmap"])
def test_resumed_run_equals_uninterrupted_run(engine, tmp_path):
    flags = ["--engine", engine, "--seeds", "0,1"]
    whole = run_cli(tmp_path / "whole", "--epochs", "2", *flags)
    cut = run_cli(tmp_path / "cut", "--epochs", "1", *flags)
    train.main(["--resume", cut, "--epochs", "2", "--no-progress"])
    for model in ("baseline", "dropout"):
        for seed in (0, 1):
            path = os.path.join(model, f"seed_{seed}")
            a, _ = history_without_timings(os.path.join(whole, path, "history.json"))
            b, _ = history_without_timings(os.path.join(cut, path, "history.json"))
            assert len(a) == 2 and a == b
            last_a, last_b = (torch.load(os.path.join(d, path, "last.pt"), weights_only=True) for d in (whole, cut))
            assert all(torch.equal(v, last_b[k]) for k, v in last_a.items())  # last.pt: the bare state_dict


def refused(argv, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
@pytest.mark.parametrize("engine", ["cudagraph", "vmap-cudagraph"])
def test_cuda_graph_engines_without_cuda_are_refused_in_one_line(engine, tmp_path, capsys):
    err = refused([*TINY, "--out", str(tmp_path), "--engine", engine], capsys)
    assert err.startswith(f"torch_ref.train: error: --engine {engine} needs a CUDA device; ")
    assert os.listdir(tmp_path) == []  # refused before anything was created
    refused([*TINY, "--out", str(tmp_path / "new"), "--engine", engine], capsys)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flags, says", [(["--engine", "vmap", "--compile"], "--compile works with --engine"),
                                         (["--compile-mode", "reduce-overhead"], "needs --compile")])
def test_compile_flags_that_do_not_combine_are_refused(flags, says, tmp_path, capsys):
    assert says in refused([*TINY, "--out", str(tmp_path / "new"), *flags], capsys)
    assert os.listdir(tmp_path) == []


def test_fast_engine_reports_divergence_with_its_step(tmp_path, capsys):
    """lr 1e8 overflows the second step; one batch per epoch puts it at epoch 2, step 1 (as
    tests/test_resume.py checks for the tutorial engine), though the check runs once an epoch."""
    with pytest.raises(SystemExit) as e:
        train.main(["--data", "synthetic:100", "--batch-size", "80", "--model", "baseline", "--epochs", "3",
                    "--lr", "1e8", "--no-progress", "--engine", "fast", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 3 and "at epoch 2, step 1 " in err, err


@pytest.mark.parametrize("engine", ["tutorial", "fast", "vmap"])
@pytest.mark.parametrize("precision, mode", [("highest", "ieee"), ("tf32", "tf32")])
def test_each_engine_sets_the_precision_flags(engine, precision, mode):
    set_precision("tf32" if precision == "highest" else "highest")  # the other one, so setting shows
    config = train.default(engine=engine, precision=precision, model="baseline")
    trainer = make_trainer(config, [Lane("baseline", 0.0, 0, "baseline")], SPLITS)
    assert current_precision() == {"matmul": mode, "conv": mode}
    assert trainer.versions["torch_deterministic_algorithms"] == (engine == "tutorial")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cudagraph_replays_equal_eager_steps_with_fresh_masks():
    """On a GPU: the captured step equals the fast engine's eager one, dropout included (a replay
    draws the masks eager code would, from each lane's own generator state; frozen masks would
    drift away), and two lanes of one seed stay equal (each lane keeps its own stream)."""
    lanes = [Lane("baseline", 0.0, 0, "baseline"), Lane("dropout", 0.5, 1, "dropout"),
             Lane("dropout", 0.5, 1, "dropout")]
    graphed, eager = (trajectory(e, lanes, 3, device="gpu") for e in ("cudagraph", "fast"))
    loss_diff, param_diff = max_diffs(graphed, eager)
    assert loss_diff <= F64_ATOL and param_diff <= F64_ATOL
    assert np.abs(graphed[0][1] - graphed[0][2]).max() <= F64_ATOL  # not bit for bit: cuDNN may use atomics


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_vmap_cudagraph_replays_equal_eager_vmap_steps():
    """On a GPU: 20 steps (2 epochs of 9 full batches and a partial one) of the vmap step captured
    as one CUDA graph for all lanes equal the vmap engine's eager steps, masks included (a replay
    draws from the CUDA generator what eager code would; frozen masks would drift away), in float64
    (F64_ATOL's reason)."""
    lanes = [Lane("baseline", 0.0, 0, "baseline"), Lane("dropout", 0.5, 1, "dropout"),
             Lane("dropout", 0.25, 2, "dropout_0.25")]
    graphed, eager = (trajectory(e, lanes, 2, device="gpu") for e in ("vmap-cudagraph", "vmap"))
    assert graphed[0].shape == (3, 20)
    loss_diff, param_diff = max_diffs(graphed, eager)
    print(f"vmap-cudagraph vs vmap, 20 steps: max loss diff {loss_diff:.1e}, max param diff {param_diff:.1e}")
    assert loss_diff <= F64_ATOL and param_diff <= F64_ATOL
