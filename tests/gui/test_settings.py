"""Settings (QSettings, a temporary INI file here) persist across two window instances."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]
WAIT = 30_000


def test_settings_persist_across_two_windows(make_window, qtbot, tmp_path, demo_clip, settings_path):
    first = make_window(str(demo_clip))
    c = first.controller
    qtbot.waitUntil(lambda: c.source_info is not None, timeout=WAIT)
    first.side.toggles["grid"].setChecked(False)
    first.side.toggles["cam"].setChecked(True)
    first.side.toggles["smoothing"].setChecked(False)
    first.side.slider.setValue(80)
    first.act_save_clean.setChecked(True)
    assert c.set_output_dir(tmp_path / "my_output")
    first.close()
    assert not c._capture

    second = make_window(None)  # no --source: the remembered one
    c2 = second.controller
    qtbot.waitUntil(lambda: c2.source_info is not None, timeout=WAIT)
    assert c2.source_info.spec == str(demo_clip)
    assert second.source_box.currentData() == str(demo_clip)
    assert not second.side.toggles["grid"].isChecked() and not c2.render_options.grid
    assert second.side.toggles["cam"].isChecked() and c2.render_options.cam
    assert not second.side.toggles["smoothing"].isChecked() and not c2.pipeline_config.smoothing
    assert second.side.toggles["bars"].isChecked()
    assert second.side.slider.value() == 80
    assert c2.pipeline_config.sensitivity == pytest.approx(c.pipeline_config.sensitivity)
    assert c2.output_dir == (tmp_path / "my_output").resolve()
    assert second.act_save_clean.isChecked()
    assert settings_path.exists()


def test_auto_fallback_to_demo_is_not_remembered(make_window, qtbot, settings_path):
    window = make_window(None)  # nothing remembered, no camera in the test machine: demo with a notice
    c = window.controller
    qtbot.waitUntil(lambda: c.source_info is not None, timeout=WAIT)
    if c.source_info.spec == "demo":
        assert "No working camera found" in window.banner.text()
    window.close()
    from ofer_live.gui.settings import AppSettings

    assert AppSettings.open(settings_path).load().source is None


def test_precedence_defaults_toml_saved_flags(make_window, settings_path):
    """defaults < TOML < saved settings < command-line flags, and a bad saved value is dropped, not fatal."""
    from ofer_live.config import PipelineConfig
    from ofer_live.gui.settings import AppSettings, StoredSettings

    toml = PipelineConfig(sensitivity=1.5)
    assert make_window(start=False, pipeline=toml).controller.pipeline_config.sensitivity == 1.5
    AppSettings.open(settings_path).save(StoredSettings(sensitivity=2.5))
    assert make_window(start=False, pipeline=toml).controller.pipeline_config.sensitivity == 2.5
    flags = {"sensitivity": 0.5}
    window = make_window(start=False, pipeline=toml, pipeline_flags=flags)
    assert window.controller.pipeline_config.sensitivity == 0.5
    AppSettings.open(settings_path).save(StoredSettings(sensitivity=-3.0))
    assert make_window(start=False, pipeline=toml).controller.pipeline_config.sensitivity == 1.5
