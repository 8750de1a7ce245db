"""--seeds: several seeds in one run equal the same seeds trained one by one, in both frameworks."""
import json
import os

import numpy as np
import pytest

from flax_impl import train as flax_train
from torch_ref import train as torch_train

SEEDS = ["3", "4", "5"]


def curves(path):
    h = json.load(open(path))
    return np.array([[e["train_loss"], e["train_acc"], e["val_loss"], e["val_acc"]] for e in h["epochs"]])


@pytest.mark.slow  # several training runs
@pytest.mark.parametrize("main, tol", [(flax_train.main, 1e-4), (torch_train.main, 0.0)])
def test_multi_seed_run_equals_single_seed_runs(main, tol, tmp_path):
    common = ["--data", "synthetic:1000", "--model", "dropout", "--epochs", "2", "--no-progress",
              "--batch-size", "96"]  # 800 = 8 x 96 + 32: the partial batch is covered too
    multi = str(tmp_path / "multi")
    main([*common, "--seeds", ",".join(SEEDS), "--out", multi])
    assert os.path.getsize(os.path.join(multi, "dropout", "curves_mean_std.png")) > 0
    for s in SEEDS:
        single = str(tmp_path / f"single{s}")
        main([*common, "--seed", s, "--out", single])
        a = curves(os.path.join(multi, "dropout", f"seed_{s}", "history.json"))
        b = curves(os.path.join(single, "dropout", "history.json"))
        # flax: vmap batches the matmuls, which may reorder float sums; torch: exactly equal.
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    first = curves(os.path.join(multi, "dropout", f"seed_{SEEDS[0]}", "history.json"))
    second = curves(os.path.join(multi, "dropout", f"seed_{SEEDS[1]}", "history.json"))
    assert not np.allclose(first, second)


@pytest.mark.parametrize("value, expected", [("1,x", "comma-separated integers"), ("", "comma-separated"),
                                             ("1,1", "repeated seed")])
def test_bad_seed_lists(value, expected, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        flax_train.main(["--data", "synthetic:500", "--seeds", value, "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
