"""ONNX Runtime execution-provider choice and session creation.

onnxruntime-gpu lists ``CUDAExecutionProvider`` even on a machine without a usable GPU; creating a
session then logs errors and silently runs on the CPU. So the choice is made by *trying*: a tiny probe
session is created with each candidate and ``session.get_providers()`` tells what really initialised.
The ORT logger is kept quiet (errors and worse only; fatal-only while probing) so the fallback does not
spill C++ log lines onto the user's terminal.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import threading
from collections.abc import Sequence

from ofer_live.errors import ModelError

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# Default order of preference when the user asks for nothing in particular. Providers not listed here
# (Azure, TensorRT, OpenVINO, ...) are only used when requested explicitly with --providers.
DEFAULT_PREFERENCE: tuple[str, ...] = (CUDA, CPU)

# ORT severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
_QUIET = 3
_SILENT = 4

# A minimal ONNX model (opset 17, Identity on a float[1] tensor 'x' -> 'y'), serialised. Embedded so
# that probing needs onnxruntime only (the onnx package is a training extra).
PROBE_MODEL = (
    b'\x08\x08\x12\x00:7\n\x10\n\x01x\x12\x01y"\x08Identity\x12\x01pZ\x0f\n\x01x\x12\n\n\x08\x08\x01\x12\x04\n'
    b"\x02\x08\x01b\x0f\n\x01y\x12\n\n\x08\x08\x01\x12\x04\n\x02\x08\x01B\x04\n\x00\x10\x11"
)

_lock = threading.Lock()
_probe_errors: dict[str, str] = {}  # provider -> first line of ORT's error when its probe session failed

# Aliases accepted on the command line (--providers cuda:1,cpu); full ORT names work too.
ALIASES = {
    "cpu": CPU,
    "cuda": CUDA,
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}
# CUDA: pick cuDNN convolution algorithms by heuristic. ORT's default (EXHAUSTIVE) times every candidate for
# every convolution when the session starts, which delays the first frame by seconds.
CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC"}


def parse_provider(spec: str) -> tuple[str, dict[str, str]]:
    """'cuda' | 'cuda:1' | 'CUDAExecutionProvider:1' | 'cpu' | any ORT name -> (ORT name, provider options).

    ``:N`` selects device N (``device_id``) for CUDA; CUDA also gets ``CUDA_OPTIONS``. ModelError for a device
    that is not a number, or a device on a provider that takes none."""
    text = str(spec).strip()
    name, sep, device = text.partition(":")
    name = ALIASES.get(name.lower(), name)
    options: dict[str, str] = dict(CUDA_OPTIONS) if name == CUDA else {}
    if sep:
        if name != CUDA:
            raise ModelError(f"--providers {text}: only CUDA takes a device number (cuda:N)")
        if not device.isdigit():
            raise ModelError(f"--providers {text}: the device must be a number, e.g. cuda:1")
        options["device_id"] = device
    return name, options


def ort_providers(specs: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """Provider specs -> what ``onnxruntime.InferenceSession(providers=...)`` takes: (name, options) pairs."""
    return [parse_provider(spec) for spec in specs]


def probe_error(name: str) -> str | None:
    """Why ``name`` did not initialise in its probe (ORT's first line), if it was probed and failed."""
    return _probe_errors.get(parse_provider(name)[0])


def _ort():
    import onnxruntime as ort

    return ort


def quiet_ort_logs() -> None:
    """Make ONNX Runtime's own logger report errors only (it logs warnings to stderr by default)."""
    ort = _ort()
    ort.set_default_logger_severity(_QUIET)


def available_providers() -> list[str]:
    """The providers this onnxruntime build lists (which does not mean they initialise)."""
    return list(_ort().get_available_providers())


def session_options(intra_op_threads: int = 0):
    """An ``onnxruntime.SessionOptions`` with quiet logging and ``intra_op_threads`` (0 = ORT default)."""
    ort = _ort()
    if intra_op_threads < 0:
        raise ModelError(f"--threads must be 0 (automatic) or a positive number, got {intra_op_threads}")
    options = ort.SessionOptions()
    options.log_severity_level = _QUIET
    options.intra_op_num_threads = int(intra_op_threads)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The three models run one after another on the same cores. With spinning on, each session's idle
    # intra-op threads busy-wait after its run and starve the next session (and MediaPipe): on 2 cores that
    # more than doubled the frame time (README, Design).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


@functools.cache
def provider_works(spec: str) -> bool:
    """True when a session created with ``spec`` (a provider name, ``cuda:N``) really runs on that provider
    (probe model, cached). A failure's reason is kept for ``probe_error``."""
    ort = _ort()
    name, options = parse_provider(spec)
    if name not in available_providers():
        return False
    if name == CPU:
        return True
    # ORT's Python layer print()s an "EP Error ... Falling back" banner when a provider raises; swallow it.
    with _lock, contextlib.redirect_stdout(io.StringIO()) as printed:
        ort.set_default_logger_severity(_SILENT)
        try:
            session_opts = ort.SessionOptions()
            session_opts.log_severity_level = _SILENT
            session = ort.InferenceSession(PROBE_MODEL, sess_options=session_opts, providers=[(name, options)])
            used = session.get_providers()
        except Exception as exc:  # ORT raises plain RuntimeError/Fail subclasses for any EP problem
            _probe_errors[name] = _shorten(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
            log.debug("provider %s failed to initialise: %s", spec, exc)
            return False
        finally:
            ort.set_default_logger_severity(_QUIET)
            said = printed.getvalue().strip()
            if said:
                log.debug("onnxruntime said while probing %s: %s", spec, said)
    works = name in used
    if not works:
        lines = [line for line in said.splitlines() if line.strip()]
        _probe_errors[name] = _shorten(lines[0]) if lines else f"a session fell back to {used[0]}"
        log.debug("provider %s is listed but a session fell back to %s", spec, used)
    return works


def select_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The providers to create sessions with, best first (specs: ORT names, or ``cuda:N`` for GPU N).

    ``requested=None`` picks the best of DEFAULT_PREFERENCE that really initialises (the list then ends with
    the CPU provider; ORT also falls back to CPU for single nodes another provider cannot run). An explicit list is
    an order of preference: every name must be available in this onnxruntime build (else ModelError listing
    the available ones); names that are listed but do not initialise are dropped with a warning, and if none
    of them initialises that is a ModelError too.
    """
    quiet_ort_logs()
    available = available_providers()
    if not requested:
        chosen = [p for p in DEFAULT_PREFERENCE if p in available and provider_works(p)]
        if CPU not in chosen:
            chosen.append(CPU)
        return chosen
    names = [str(p).strip() for p in requested if str(p).strip()]
    unknown = [p for p in names if parse_provider(p)[0] not in available]
    if unknown:
        raise ModelError(
            f"execution provider {', '.join(unknown)} is not available in this onnxruntime build; "
            f"available: {', '.join(available)}"
        )
    working = [name for name in dict.fromkeys(names) if provider_works(name)]
    for name in dict.fromkeys(names):
        if working and name not in working:
            log.warning(
                "execution provider %s is installed but failed to initialise (%s); using %s",
                name,
                probe_error(name) or "no reason given",
                working[0],
            )
    if not working:
        usable = [p for p in available if provider_works(p)]
        raise ModelError(
            f"execution provider {', '.join(names)} failed to initialise (no usable device or driver?); "
            f"working providers: {', '.join(usable)}"
        )
    return working


def create_session(model: bytes | str, providers: Sequence[str], intra_op_threads: int = 0, source: str = "model"):
    """An ``onnxruntime.InferenceSession`` for ``model`` (bytes or path); ModelError naming ``source`` if ORT
    cannot load it. ``session.get_providers()[0]`` is the provider actually used."""
    ort = _ort()
    quiet_ort_logs()
    try:
        return ort.InferenceSession(
            model, sess_options=session_options(intra_op_threads), providers=ort_providers(providers)
        )
    except ModelError:
        raise
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/RuntimeError types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{source}: onnxruntime cannot load it ({_shorten(reason)})") from None


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
