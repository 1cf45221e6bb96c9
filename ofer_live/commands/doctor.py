"""`ofer-live doctor`: check the installation, the providers, the models, the cameras and the display."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from ofer_live.commands.common import add_runtime_arguments, config_from_args

NAME = "doctor"
HELP = "check versions, ONNX Runtime providers, model checksums and contracts, cameras and the display"

_OPENCV_DISTS = (
    "opencv-contrib-python",
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python-headless",
)
_CAMERA_TIMEOUT_S = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-camera", action="store_true", help="skip the camera probe")
    parser.add_argument(
        "--cameras",
        type=int,
        default=3,
        metavar="N",
        help="probe camera indices 0..N-1 (default 3); each probe gives up after a few seconds",
    )
    add_runtime_arguments(parser)


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _module_version(module: str) -> tuple[str | None, str | None]:
    """(version, error) after importing ``module``."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # an installed but broken package (missing shared library...) is a finding
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return str(getattr(mod, "__version__", None) or "?"), None


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []

    @staticmethod
    def section(title: str) -> None:
        print(f"\n{title}")

    @staticmethod
    def row(key: str, value: str) -> None:
        print(f"  {key:<14} {value}")

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")
        self.row(key, f"PROBLEM: {message}")


def _versions(report: _Report) -> None:
    import platform

    report.section("versions")
    report.row("ofer_live", _dist_version("ofer_live") or "(not installed, running from source)")
    report.row("python", f"{platform.python_version()} ({sys.executable})")
    report.row("platform", platform.platform())
    for label, module, required in (
        ("numpy", "numpy", True),
        ("opencv", "cv2", True),
        ("mediapipe", "mediapipe", True),
        ("onnxruntime", "onnxruntime", True),
        ("PySide6", "PySide6", False),
    ):
        version, error = _module_version(module)
        if error is not None:
            if required:
                report.problem(label, f"cannot import {module} ({error})")
            else:
                report.row(label, f"not usable ({error}); the desktop app needs it, the CLI does not")
        else:
            if module == "cv2":
                dists = [d for d in _OPENCV_DISTS if _dist_version(d)]
                version = f"{version} ({', '.join(dists) or 'unknown package'})"
            report.row(label, version)
    opencv = [d for d in _OPENCV_DISTS if _dist_version(d)]
    if len(opencv) > 1:
        report.problem(
            "opencv", f"several OpenCV packages installed ({', '.join(opencv)}); keep only opencv-contrib-python"
        )
    runtimes = [d for d in ("onnxruntime", "onnxruntime-gpu") if _dist_version(d)]
    if len(runtimes) > 1:
        report.problem("onnxruntime", "both onnxruntime and onnxruntime-gpu are installed; they clash, keep one")


def cuda_advice(error: str | None) -> str:
    """One sentence on why CUDA did not initialise, from ORT's probe error."""
    import onnxruntime as ort

    version = getattr(ort, "__version__", "?")
    text = (error or "").lower()
    if "cudnn" in text:
        return (
            f"onnxruntime-gpu {version} cannot load the cuDNN it was built for ({error}); install the cuDNN "
            "version its documentation lists for this release, or use --providers cpu"
        )
    if "libcu" in text or ("cuda" in text and ("version" in text or "driver" in text or "shared object" in text)):
        return (
            f"onnxruntime-gpu {version} cannot load the CUDA runtime it was built for, or the NVIDIA driver is "
            f"too old ({error}); install the matching CUDA libraries and driver, or use --providers cpu"
        )
    if error:
        return f"no usable NVIDIA GPU or driver ({error})"
    return "no usable NVIDIA GPU or driver"


def _providers(report: _Report, requested: tuple[str, ...] | None) -> None:
    from ofer_live.errors import ModelError
    from ofer_live.runtime.providers import (
        CPU,
        CUDA,
        available_providers,
        probe_error,
        provider_works,
        select_providers,
    )

    report.section("ONNX Runtime providers")
    try:
        available = available_providers()
    except ImportError as exc:
        report.problem("available", f"onnxruntime missing ({exc})")
        return
    report.row("available", ", ".join(available))
    for name in available:
        if name == CPU:
            continue
        if provider_works(name):
            report.row("", f"{name}: initialises")
        elif name == CUDA:
            advice = cuda_advice(probe_error(name))
            report.row("", f"{name}: listed but does NOT initialise, so the CPU is used: {advice}")
        else:
            report.row("", f"{name}: does not initialise here")
    if CUDA not in available:
        report.row("", "CUDA: not in this onnxruntime build (the [gpu] extra installs onnxruntime-gpu)")
    report.row("default", select_providers(None)[0])
    if requested:
        try:
            report.row("requested", f"{','.join(requested)} -> {select_providers(requested)[0]}")
        except ModelError as exc:
            report.problem("requested", str(exc))


def _models(report: _Report, models_dir: Path, verify: bool) -> None:
    from ofer_live.runtime.loader import check_models

    report.section(f"models ({models_dir})")
    if not models_dir.is_dir():
        report.problem("folder", f"{models_dir} not found (use --models DIR)")
        return
    manifest_error, checks = check_models(models_dir, verify_checksums=verify)
    if manifest_error is not None:
        report.problem("manifest", manifest_error)
    elif verify:
        report.row("manifest", "ok")
    for check in checks:
        size = _human_size(check.size_bytes)
        sha = f"sha256 {check.sha256[:12]}" if check.sha256 else "sha256 -"
        if check.ok and check.metadata is not None:
            m = check.metadata
            detail = (
                f"S={m['face_size']} G={m['patch_grid']} D={m['latent_dim']} threshold={m['threshold']:g} "
                f"trained_on={m.get('trained_on')!s}"
            )
            report.row(check.name, f"ok  {check.path.name}  {size}  {sha}  contract ok  {detail}")
        else:
            report.problem(check.name, check.error or "failed")


def _human_size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _probe_camera(index: int) -> str:
    import cv2

    params = []
    for name in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
        if hasattr(cv2, name):
            params += [getattr(cv2, name), int(_CAMERA_TIMEOUT_S * 1000 * 0.6)]
    cap = cv2.VideoCapture(index, cv2.CAP_ANY, params) if params else cv2.VideoCapture(index)
    try:
        if not cap.isOpened():
            return "cannot be opened"
        ok, frame = cap.read()
        if not ok or frame is None:
            return "opens but gives no frame"
        return f"ok, {frame.shape[1]}x{frame.shape[0]}"
    finally:
        cap.release()


def _probe_into(index: int, answer: list[str]) -> None:
    try:
        answer.append(_probe_camera(index))
    except Exception as exc:  # a driver error is a finding, not a crash
        answer.append(f"error ({type(exc).__name__}: {exc})")


def _cameras(report: _Report, count: int) -> None:
    import cv2

    report.section("cameras")
    set_level = getattr(getattr(getattr(cv2, "utils", None), "logging", None), "setLogLevel", None)
    old_level = None
    if set_level is not None:
        old_level = set_level(0)  # LOG_LEVEL_SILENT; returns the previous level
    try:
        for index in range(count):
            if sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists():
                report.row(f"camera:{index}", "not present")
                continue
            answer: list[str] = []
            thread = threading.Thread(target=_probe_into, args=(index, answer), daemon=True, name=f"camera-{index}")
            thread.start()
            thread.join(_CAMERA_TIMEOUT_S)
            report.row(f"camera:{index}", answer[0] if answer else f"no answer within {_CAMERA_TIMEOUT_S:g} s")
    finally:
        if set_level is not None and old_level is not None:
            set_level(old_level)


def _display(report: _Report) -> None:
    report.section("display")
    platform_name = os.environ.get("QT_QPA_PLATFORM", "")
    if platform_name:
        usable = platform_name.split(":")[0] not in ("offscreen", "minimal")
        report.row("QT_QPA_PLATFORM", platform_name + ("" if usable else " (windows are not shown)"))
    if sys.platform.startswith("linux"):
        found = [f"{k}={os.environ[k]}" for k in ("WAYLAND_DISPLAY", "DISPLAY") if os.environ.get(k)]
        if found:
            report.row("display", ", ".join(found))
        else:
            report.row("display", "none (no DISPLAY or WAYLAND_DISPLAY): use `ofer-live video` for headless runs")
    else:
        report.row("display", f"{sys.platform}: assumed available")


def run(args: argparse.Namespace) -> int:
    from ofer_live import __version__

    config = config_from_args(args)
    report = _Report()
    print(f"ofer-live {__version__} doctor")
    _versions(report)
    try:
        _providers(report, config.runtime.providers)
    except ImportError as exc:
        report.problem("onnxruntime", str(exc))
    _models(report, Path(config.runtime.models_dir), config.runtime.verify_checksums)
    if not args.no_camera:
        _cameras(report, max(0, args.cameras))
    _display(report)
    print()
    if report.problems:
        print(f"{len(report.problems)} problem(s):")
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    print("all checks passed")
    return 0
