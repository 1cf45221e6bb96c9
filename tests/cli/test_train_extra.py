"""Commands that need torch say so in one line when the train extra is missing (checked without importing torch)."""

import importlib.util

import pytest

from ofer_live.cli import main


@pytest.mark.parametrize("argv", [["train", "expression"], ["export", "--runs", "runs/x", "--out", "out"]])
def test_missing_train_extra_is_a_one_line_error(argv, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ofer-live: error:") and "pip install -e '.[train]'" in err and "\n" not in err
