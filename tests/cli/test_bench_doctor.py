"""`ofer-live bench` and `ofer-live doctor`, plus: every flag of these commands has help."""

from __future__ import annotations

import argparse
import json
import os
import time

import pytest

from ofer_live.pipeline.frame_pipeline import STAGES


def test_bench_json(ofer, tiny_models_dir):
    result = ofer(
        "bench",
        "--frames",
        4,
        "--warmup",
        1,
        "--size",
        "320x240",
        "--json",
        "--models",
        tiny_models_dir,
        "--occluder-seconds",
        "4",
    )
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["frames"] == 4 and report["warmup"] == 1 and report["frame_size"] == [320, 240]
    assert report["provider"] == "CPUExecutionProvider"
    assert report["cpu"].endswith(f"{os.cpu_count()} logical cores")
    assert set(report["stages"]) == set(STAGES)
    for stats in report["stages"].values():
        assert 0 <= stats["median_ms"] <= stats["p95_ms"] + 1e-9
    assert report["fps"] > 0 and report["peak_rss_mb"] > 10
    assert report["face_size"] == 32 and 0.0 <= report["face_rate"] <= 1.0
    occluders = report["demo_occluders"]  # 4 s of the clip: clean frames and at least its first occluder
    assert "clean face" in occluders and len(occluders) >= 2
    for name, entry in occluders.items():
        assert entry["frames"] > 0 and 0.0 <= entry["flagged"] <= 1.0
        assert name == "clean face" or 0.0 <= entry["beside"] <= 1.0


def test_bench_several_faces(ofer, tiny_models_dir):
    result = ofer("bench", "--frames", 3, "--warmup", 1, "--faces", 3, "--json", "--models", tiny_models_dir)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["faces_per_frame"] == 3 and report["mean_faces_found"] >= 2.5  # three astronauts side by side
    assert report["demo_occluders"] == {}  # the per-occluder check needs one face per frame


def test_bench_repeat_reports_every_run_and_the_median(ofer, tiny_models_dir):
    argv = [
        "bench",
        "--frames",
        3,
        "--warmup",
        0,
        "--repeat",
        3,
        "--occluder-seconds",
        "0",
        "--models",
        tiny_models_dir,
    ]
    result = ofer(*argv, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    runs = report["fps_runs"]
    assert len(runs) == 3 and all(f > 0 for f in runs) and report["fps"] == sorted(runs)[1]
    assert report["mean_faces_found"] <= 1.0  # counted over all 9 timed frames
    table = ofer(*argv, "--precision", "int8")  # tiny models have no int8 variant: fp32, and the table says so
    assert table.code == 0, table.err
    assert "median of 3 runs:" in table.out and ", fp32)" in table.out


def test_bench_table(ofer, tiny_models_dir):
    result = ofer("bench", "--frames", 3, "--warmup", 0, "--models", tiny_models_dir, "--occluder-seconds", "0")
    assert result.code == 0, result.err
    for stage in STAGES:
        assert any(line.startswith(stage) for line in result.out.splitlines()), stage
    assert "median ms" in result.out and "p95 ms" in result.out
    assert "FPS" in result.out and "peak RSS" in result.out and "CPUExecutionProvider" in result.out
    assert "logical cores" in result.out


def test_bench_names_the_processor_from_cpuinfo():
    from ofer_live.commands.bench import cpu_description

    cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t: fpu\n"
    assert cpu_description(cpuinfo) == f"Intel(R) Xeon(R) Processor, {os.cpu_count()} logical cores"
    assert cpu_description("").endswith("logical cores")  # no cpuinfo (macOS, Windows): platform's name


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--frames", "0"], "--frames"),
        (["--size", "big"], "--size"),
        (["--warmup", "-1"], "--warmup"),
        (["--occluder-seconds", "-1"], "--occluder-seconds"),
        (["--faces", "5"], "--faces must be between 1 and 4"),
        (["--repeat", "0"], "--repeat must be 1 or more"),
    ],
)
def test_bench_bad_flags(ofer, one_line_error, tiny_models_dir, args, fragment):
    one_line_error(ofer("bench", *args, "--models", tiny_models_dir), fragment)


def test_doctor_healthy(ofer, tiny_models_dir):
    start = time.monotonic()
    result = ofer("doctor", "--models", tiny_models_dir)
    assert time.monotonic() - start < 30  # the camera probe never hangs
    assert result.code == 0, result.out + result.err
    for fragment in (
        "python",
        "numpy",
        "opencv",
        "mediapipe",
        "onnxruntime",
        "PySide6",
        "available",
        "CPUExecutionProvider",
        "occlusion",
        "reconstructor",
        "expression",
        "contract ok",
        "camera:0",
        "display",
        "all checks passed",
    ):
        assert fragment in result.out, fragment


def test_doctor_reports_broken_models(ofer, models_copy):
    data = bytearray((models_copy / "expression.onnx").read_bytes())
    data[100] ^= 0xFF
    (models_copy / "expression.onnx").write_bytes(bytes(data))
    (models_copy / "occlusion.onnx").unlink()
    result = ofer("doctor", "--no-camera", "--models", models_copy)
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "reconstructor  ok" in result.out
    assert "expression.onnx: sha256" in result.out
    assert "occlusion.onnx: model file not found" in result.out
    assert "2 problem(s)" in result.out


def test_doctor_missing_models_folder(ofer, tmp_path):
    result = ofer("doctor", "--no-camera", "--models", tmp_path / "none")
    assert result.code == 1 and "not found" in result.out


def test_doctor_unknown_provider(ofer, tiny_models_dir):
    result = ofer("doctor", "--no-camera", "--models", tiny_models_dir, "--providers", "NopeExecutionProvider")
    assert result.code == 1 and "NopeExecutionProvider is not available" in result.out


@pytest.mark.parametrize("command", ["video", "images", "bench", "doctor"])
def test_every_flag_has_help(command):
    from ofer_live.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    assert sub.description
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS, (command, action.dest)


def test_help_runs(ofer):
    with pytest.raises(SystemExit) as info:
        ofer("video", "--help")
    assert info.value.code == 0
