"""`ofer-live` / `ofer-live gui` on the command line: flags, the no-display hint."""

from __future__ import annotations

import os
import subprocess

import pytest

from ofer_live.cli import build_parser


def test_gui_flags_parse():
    args = build_parser().parse_args(
        [
            "gui",
            "--source",
            "camera:1",
            "--record",
            "out",
            "--presentation",
            "--models",
            "m",
            "--providers",
            "CPUExecutionProvider",
            "--sensitivity",
            "2",
        ]
    )
    assert args.source == "camera:1" and args.record == "out" and args.presentation
    assert str(args.models) == "m" and args.sensitivity == 2.0


def _run_main_capturing_gui(monkeypatch, argv):
    import ofer_live.commands.gui as gui_command
    from ofer_live import cli

    seen = []
    monkeypatch.setattr(gui_command, "run", lambda args: seen.append(args) or 0)
    assert cli.main(argv) == 0
    return seen


def test_gui_is_the_default_command(monkeypatch):
    seen = _run_main_capturing_gui(monkeypatch, ["--source", "camera:0", "--presentation"])
    assert seen and seen[0].source == "camera:0" and seen[0].presentation


def test_default_command_with_source_demo(monkeypatch):
    seen = _run_main_capturing_gui(monkeypatch, ["--source", "demo"])
    assert seen and seen[0].source == "demo"


def test_default_command_keeps_global_flags_and_accepts_gui_flags(monkeypatch):
    seen = _run_main_capturing_gui(monkeypatch, ["--presentation", "-v", "--source", "demo", "--debug"])
    assert seen and seen[0].presentation and seen[0].source == "demo"


@pytest.mark.timeout(60)
def test_no_display_prints_a_one_line_hint_and_exits_non_zero(cli_python, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    for argv in ([], ["gui", "--source", "demo"]):
        proc = subprocess.run([*cli_python, *argv], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "ofer-live video" in lines[0]
        assert proc.stdout == ""
