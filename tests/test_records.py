"""Run records: a history row has exactly the fields experiment.metrics names (an unknown one is an
error, never dropped), and a RunConfig records what each file should keep of the settings."""
import pytest

from experiment.config import RunConfig
from experiment.history import add_epoch, new_history
from experiment.metrics import EPOCH_FIELDS, check_names
from experiment.trainer import Lane

ROW = {"epoch": 1, "train_loss": 2.0, "train_acc": 0.1, "val_loss": 1.9, "val_acc": 0.2, "seconds": 0.5}


def history():
    return new_history("flax", "baseline", {}, 0, "cpu", {}, {})


def test_a_row_of_the_declared_fields_is_kept_in_their_order():
    h = history()
    assert add_epoch(h, dict(reversed(list(ROW.items()))))
    assert list(h["epochs"][0]) == list(EPOCH_FIELDS) and h["best_epoch"] == 1


@pytest.mark.parametrize("row", [{**ROW, "train_top5": 0.5}, {k: v for k, v in ROW.items() if k != "val_acc"}],
                         ids=["unknown field", "missing field"])
def test_a_row_with_other_fields_is_an_error(row):
    with pytest.raises(ValueError, match="history row fields"):
        add_epoch(history(), row)


def test_a_trainer_reporting_other_metrics_is_an_error():
    with pytest.raises(ValueError, match="unknown \\['val_top5'\\], missing \\[\\]"):
        check_names({"val_loss": 1, "val_acc": 1, "val_top5": 1}, "val")


def test_config_records_what_each_file_keeps():
    config = RunConfig.from_args("flax", {"model": "both", "seeds": [3, 4], "out": "o", "overwrite": True,
                                          "resume": None, "no_progress": True, "impl": "matmul"})
    run = config.run_record()
    assert "overwrite" not in run and "no_progress" not in run and run["seeds"] == [3, 4] and run["impl"] == "matmul"
    lane = config.recorded(Lane("dropout", 0.5, 4, "dropout"))
    assert lane["model"] == "dropout" and lane["seed"] == 4 and "seeds" not in lane
    with pytest.raises(TypeError, match="unknown setting"):
        config.replace(engine="fast")  # a PyTorch flag on a Flax config
    assert config.replace(impl="xla", epochs=3).extras["impl"] == "xla"


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_fresh_run_removes_its_own_stale_temp_files_only(fw, tmp_path):
    """A run below --out (another run's folder, perhaps writing now) keeps its temp files; those a
    kill left in this run's own folders go."""
    parent = tmp_path / "runs"
    other = parent / "earlier-run" / "baseline"
    other.mkdir(parents=True)
    (other / ".tmp-being-written").write_bytes(b"half a checkpoint")
    (parent / "baseline").mkdir()
    (parent / "baseline" / ".tmp-left-by-a-kill").write_bytes(b"")
    from tests.conftest import TRAIN
    TRAIN[fw](["--data", "synthetic:300", "--model", "baseline", "--epochs", "1", "--no-progress", "--out",
               str(parent)])
    assert (other / ".tmp-being-written").exists()
    assert not (parent / "baseline" / ".tmp-left-by-a-kill").exists()
