"""benchmarks.runners.speed --merge: several runs (one per pair of variants, or one per lease) build one table."""
import json

import pytest

from benchmarks.runners import speed
from experiment.errors import UserError


def row(variant, batch, rate, command="earlier"):
    return {"variant": variant, "framework": variant.split("-")[0], "model": "dropout", "batch": batch, "seeds": 1,
            "precision": "highest", "img_per_s": rate, "img_per_s_min": rate, "img_per_s_max": rate,
            "compile_s": 0.0, "eval_img_per_s": rate, "command": command}


def test_a_configuration_measured_again_replaces_its_row_and_the_others_stay():
    kept = [row("torch-fast", 64, 1.0), row("flax-scan-matmul", 64, 2.0)]
    out = speed.merged(kept, [row("flax-scan-matmul", 64, 3.0, "now"), row("flax-scan-xla", 64, 4.0, "now")])
    assert [(r["variant"], r["img_per_s"], r["command"]) for r in out] == [
        ("torch-fast", 1.0, "earlier"), ("flax-scan-matmul", 3.0, "now"), ("flax-scan-xla", 4.0, "now")]
    assert speed.merged([], kept) == kept


def test_rows_keep_the_command_machine_and_date_that_measured_them(tmp_path):
    first = {k: v for k, v in row("torch-fast", 64, 1.0).items() if k != "command"}
    speed.write(str(tmp_path), "first", [first])
    second = {k: v for k, v in row("flax-scan-xla", 64, 2.0).items() if k != "command"}
    speed.write(str(tmp_path), "second", speed.merged(speed.previous_rows(str(tmp_path)), [second]))
    rows = json.load(open(tmp_path / "speed.json"))["rows"]
    assert [r["command"] for r in rows] == ["first", "second"] and all("machine" in r and "date" in r for r in rows)


def test_a_damaged_table_is_refused_in_one_line(tmp_path):
    (tmp_path / "speed.json").write_text("{")
    with pytest.raises(UserError, match="--merge: .* is not readable JSON"):  # main's one line, exit 2
        speed.previous_rows(str(tmp_path))


def test_kept_rows_keep_the_machine_and_date_that_measured_them(tmp_path):  # issue 31, item 18
    other = {"cpu": "Another machine", "cores": 3}
    kept = {k: v for k, v in row("torch-fast", 64, 1.0).items() if k != "command"}
    (tmp_path / "speed.json").write_text(json.dumps({"command": "earlier", "machine": other, "rows": [kept]}))
    new = {k: v for k, v in row("flax-scan-xla", 64, 2.0).items() if k != "command"}
    speed.write(str(tmp_path), "now", speed.merged(speed.previous_rows(str(tmp_path)), [new]))
    old, fresh = json.load(open(tmp_path / "speed.json"))["rows"]
    assert old["machine"] == other and old["date"] == "not recorded" and old["command"] == "earlier"
    assert fresh["machine"] == speed.machine_info() and fresh["date"] != "not recorded"  # control: this run's row


DAMAGED_TABLES = {
    "not JSON": "{",
    "nested deep": "[" * 100_000 + "]" * 100_000,
    "a list": "[]",
    "rows a string": json.dumps({"rows": "x"}),
    "a row a number": json.dumps({"rows": [3]}),
    "a row without model": json.dumps({"rows": [{"variant": "torch-fast", "batch": 64}]}),
    "a row with a list for batch": json.dumps({"rows": [{"variant": "torch-fast", "model": "dropout", "batch": []}]}),
}


@pytest.mark.parametrize("case", DAMAGED_TABLES)
def test_a_damaged_table_to_merge_is_one_line_before_measuring(tmp_path, case, capsys, monkeypatch):  # item 18
    (tmp_path / "speed.json").write_text(DAMAGED_TABLES[case])

    def measured(*args, **kwargs):
        raise AssertionError("measured before the table to merge was read")
    for name in ("run_subprocess", "run_group"):
        monkeypatch.setattr(speed, name, measured, raising=False)
    with pytest.raises(SystemExit) as e:
        speed.main(["--variants", "torch-fast", "--models", "dropout", "--batches", "64", "--merge",
                    "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, (e.value.code, err)
    assert err.startswith("benchmarks.runners.speed: error: --merge: ") and "Traceback" not in err, err
    assert (tmp_path / "speed.json").read_text() == DAMAGED_TABLES[case]


def test_rows_share_one_process_per_framework_and_xla_flag_set(tmp_path, monkeypatch):
    groups = []

    def fake_group(configs, how):
        groups.append(list(configs))
        for config in configs:
            yield speed.skipped_row(config, "not measured here")
    monkeypatch.setattr(speed, "run_group", fake_group)
    speed.main(["--variants", "flax-scan-matmul,torch-fast,flax-scan-matmul-cmdbuf,flax-scan-xla@128,torch-vmap8@32",
                "--models", "dropout", "--batches", "64", "--rounds", "1", "--out", str(tmp_path)])
    assert groups == [[("flax-scan-matmul", "dropout", 64), ("flax-scan-xla", "dropout", 128)],
                      [("torch-fast", "dropout", 64), ("torch-vmap8", "dropout", 32)],
                      [("flax-scan-matmul-cmdbuf", "dropout", 64)]]  # XLA reads its flags once, at start-up
    assert len(json.load(open(tmp_path / "speed.json"))["rows"]) == 5


def test_a_row_is_timed_over_a_window_sized_by_its_own_rate():
    import time
    calls = []

    def epoch(seconds):
        calls.append(seconds)
        time.sleep(seconds)
    warm, times = speed.timed(lambda: epoch(0.01), 2, 0.1)
    assert len(times) >= 8 and sum(times) >= 0.1 and len(calls) == len(times) + 1  # a warm-up apart
    _, times = speed.timed(lambda: epoch(0.05), 2, 0.0)
    assert len(times) == 2  # no window: the fewest timed epochs


def test_a_bad_batch_after_a_variant_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        speed.main(["--variants", "torch-fast@x", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "torch-fast@x" in err and not (tmp_path / "o").exists()
