"""benchmarks.runners.speed --merge: several runs (one per pair of variants, or one per lease) build one table."""
import json

import pytest

from benchmarks.runners import speed


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
    with pytest.raises(SystemExit, match="--merge: .* is not readable JSON"):
        speed.previous_rows(str(tmp_path))
