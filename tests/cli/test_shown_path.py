"""Reports show the models folder relative to the working directory, so committed reports carry no machine's paths."""

from pathlib import Path

from ofer_live.commands.common import shown_path


def test_a_path_under_the_working_directory_is_shown_relative(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "exported_models").mkdir()
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "exported_models") == "exported_models"
    assert shown_path("exported_models") == "exported_models"


def test_a_path_outside_the_working_directory_stays_absolute(tmp_path: Path, monkeypatch) -> None:
    work, models = tmp_path / "work", tmp_path / "elsewhere" / "models"
    work.mkdir()
    models.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert shown_path(models) == str(models.resolve())
