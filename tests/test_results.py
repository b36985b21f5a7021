import json

import pytest

from nnimaging import results


def test_save_and_load_round_trip(tmp_path):
    record = {"command": "python -m nnimaging.experiments x", "rows": [{"a": 1.5}]}
    path = results.save("table_x", record, tmp_path)
    assert path == tmp_path / "table_x.json"
    assert results.load("table_x", tmp_path) == record
    assert results.available(tmp_path) == ["table_x"]
    assert not list(tmp_path.glob("*.tmp")), "the atomic write leaves no temporary file"


def test_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(results.ResultsNotFoundError, match=r"sigma_sweep.json.*python -m nnimaging.experiments sigma-sweep"):
        results.load("sigma_sweep", tmp_path)


def test_records_must_say_what_made_them(tmp_path):
    with pytest.raises(ValueError, match="'command'"):
        results.save("x", {"rows": []}, tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a results file"):
        results.load("bad", tmp_path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        results.load("broken", tmp_path)
    for name in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="plain file stem"):
            results.load(name, tmp_path)


def test_shipped_results_files_record_command_and_hardware():
    for name in results.available():
        record = results.load(name)
        assert record["command"].startswith("python -m nnimaging."), name
        assert record["hardware"] and record["torch"], name
