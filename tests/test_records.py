"""Run records: a history row has exactly the fields experiment.metrics names (an unknown one is an
error, never dropped), and a RunConfig records what each file should keep of the settings."""
from types import SimpleNamespace

import pytest

from experiment.config import RunConfig
from experiment.lanes import Lane
from experiment.metrics import EPOCH_FIELDS, check_names
from experiment.records import add_epoch, new_history
from flax_impl.options import FlaxOptions

ROW = {"epoch": 1, "train_loss": 2.0, "train_acc": 0.1, "val_loss": 1.9, "val_acc": 0.2, "seconds": 0.5}
BASELINE = Lane("baseline", 0.0, 0, "baseline")


def history():
    config = RunConfig.from_args("flax", {}, FlaxOptions)
    return new_history(BASELINE, config, SimpleNamespace(device="cpu", versions={}), {})


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
                                          "resume": None, "no_progress": True, "impl": "matmul"}, FlaxOptions)
    run = config.run_record()
    assert "overwrite" not in run and "no_progress" not in run and run["seeds"] == [3, 4] and run["impl"] == "matmul"
    lane = config.recorded(Lane("dropout", 0.5, 4, "dropout"))
    assert lane["model"] == "dropout" and lane["seed"] == 4 and "seeds" not in lane
    assert config.recorded(BASELINE)["dropout_rate"] == 0.0  # a BaseLine lane has no dropout, whatever --dropout-rate
    with pytest.raises(TypeError, match="unknown setting"):
        config.replace(engine="fast")  # a PyTorch flag on a Flax config
    assert config.replace(impl="xla", epochs=3).options.impl == "xla"


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_every_framework_flag_is_a_typed_option_and_back(fw):
    """The framework's flags and its options dataclass name the same settings, with the same defaults."""
    import dataclasses
    import importlib

    from experiment.cli import train_parser
    backend = importlib.import_module(f"{'flax_impl' if fw == 'flax' else 'torch_ref'}.train").BACKEND
    parsed = vars(train_parser(backend.framework, backend.options.add_flags).parse_args([]))
    common = {f.name for f in dataclasses.fields(RunConfig)}
    assert {k: v for k, v in parsed.items() if k not in common} == dataclasses.asdict(backend.options())


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


def test_an_epochs_log_line_is_printed_only_once_its_files_are_on_disk(monkeypatch):
    """A slow disk (each fsync 50 ms) and the writer's background thread: every 'epoch N/3' line the
    user sees comes after epoch N's train state (the commit point a --resume continues from) was
    written, so a kill never loses an epoch the log showed."""
    import time

    import experiment.atomic as atomic
    from experiment import records
    from flax_impl import train

    events, fsync = [], atomic.os.fsync

    def slow_fsync(fd):
        time.sleep(0.05)
        fsync(fd)

    def state_written(original):
        def save(self, snapshot, header):
            original(self, snapshot, header)
            events.append(("state", header["epoch"]))
        return save

    monkeypatch.setattr(atomic.os, "fsync", slow_fsync)
    monkeypatch.setattr(records.TrainerRecords, "write_state", state_written(records.TrainerRecords.write_state))
    begin = records.RunRecords.begin
    monkeypatch.setattr(records.RunRecords, "begin", lambda self, writer, stop=None: begin(
        self, writer, stop, log=lambda line: events.append(("line", int(line.split("epoch ")[1].split("/")[0])))))
    train.main(["--data", "synthetic:300", "--model", "baseline", "--epochs", "3", "--no-progress", "--out", "run"])
    assert [e for e in events if e[0] == "line"] == [("line", 1), ("line", 2), ("line", 3)]
    for kind, epoch in events:
        if kind == "line":
            assert ("state", epoch) in events[: events.index((kind, epoch))], events
