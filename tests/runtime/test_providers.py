"""Provider choice: best available by default, silent CUDA->CPU fallback detected, explicit choice checked."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from ofer_live.errors import ModelError
from ofer_live.runtime import providers as P


@pytest.fixture(autouse=True)
def _fresh_probe_cache():
    P.provider_works.cache_clear()
    yield
    P.provider_works.cache_clear()


class _FakeSession:
    """Stands in for ort.InferenceSession: reports the providers a real onnxruntime-gpu would."""

    def __init__(self, used):
        self._used = used

    def get_providers(self):
        return list(self._used)


def _fake_gpu_build(monkeypatch, cuda_initialises: bool, raise_on_cuda: bool = False, seen: list | None = None):
    real_session = ort.InferenceSession
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])

    def name(entry):
        return entry[0] if isinstance(entry, tuple) else entry

    def session(model, sess_options=None, providers=None):
        if seen is not None:
            seen.append(list(providers or []))
        if providers and name(providers[0]) == "CUDAExecutionProvider":
            if raise_on_cuda:
                raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
            used = [name(p) for p in providers] if cuda_initialises else ["CPUExecutionProvider"]
            return _FakeSession(used)
        return real_session(model, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(ort, "InferenceSession", session)


def test_probe_model_runs_on_cpu():
    session = ort.InferenceSession(P.PROBE_MODEL, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.array([2.5], np.float32)})
    assert y.tolist() == [2.5]


def test_default_is_cpu_on_this_machine():
    chosen = P.select_providers(None)
    assert chosen[-1] == "CPUExecutionProvider"
    assert all(p in ort.get_available_providers() for p in chosen)
    assert "AzureExecutionProvider" not in chosen  # only used when asked for


def test_silent_cuda_fallback_is_detected(monkeypatch):
    _fake_gpu_build(monkeypatch, cuda_initialises=False)
    assert not P.provider_works("CUDAExecutionProvider")
    assert P.select_providers(None) == ["CPUExecutionProvider"]


def test_cuda_that_raises_is_detected(monkeypatch):
    _fake_gpu_build(monkeypatch, cuda_initialises=False, raise_on_cuda=True)
    assert P.select_providers(None) == ["CPUExecutionProvider"]


def test_working_cuda_is_preferred(monkeypatch):
    _fake_gpu_build(monkeypatch, cuda_initialises=True)
    assert P.select_providers(None) == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_explicit_cuda_that_falls_back_is_an_error(monkeypatch):
    _fake_gpu_build(monkeypatch, cuda_initialises=False)
    with pytest.raises(ModelError, match="CUDAExecutionProvider failed to initialise.*working providers: .*CPU"):
        P.select_providers(("CUDAExecutionProvider",))
    # ... but as one choice among several it is skipped
    assert P.select_providers(("CUDAExecutionProvider", "CPUExecutionProvider")) == ["CPUExecutionProvider"]


def test_unknown_provider_lists_available():
    with pytest.raises(ModelError) as info:
        P.select_providers(("TensorrtExecutionProvider",))
    message = str(info.value)
    assert "TensorrtExecutionProvider is not available" in message
    assert "available: " in message and "CPUExecutionProvider" in message
    assert "\n" not in message


def test_explicit_cpu():
    assert P.select_providers(("CPUExecutionProvider",)) == ["CPUExecutionProvider"]


def test_threads_option():
    assert P.session_options(2).intra_op_num_threads == 2
    assert P.session_options(0).intra_op_num_threads == 0
    with pytest.raises(ModelError, match="threads"):
        P.session_options(-1)


def test_create_session_reports_garbage_in_one_line():
    with pytest.raises(ModelError) as info:
        P.create_session(b"not an onnx model", ["CPUExecutionProvider"], source="x.onnx")
    assert str(info.value).startswith("x.onnx: onnxruntime cannot load it")
    assert "\n" not in str(info.value)


def test_session_options_do_not_spin_idle_threads():
    """The three sessions share the cores; spinning idle threads of one starve the next (bench: 69 -> 33 ms)."""
    from ofer_live.runtime.providers import session_options

    options = session_options(2)
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_provider_specs_and_cuda_options():
    assert P.parse_provider("cpu") == ("CPUExecutionProvider", {})
    assert P.parse_provider("cuda") == ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})
    assert P.parse_provider("CUDA:1") == (
        "CUDAExecutionProvider",
        {"cudnn_conv_algo_search": "HEURISTIC", "device_id": "1"},
    )
    assert P.parse_provider("CUDAExecutionProvider:2")[1]["device_id"] == "2"
    with pytest.raises(ModelError, match="the device must be a number"):
        P.parse_provider("cuda:x")
    with pytest.raises(ModelError, match="only CUDA takes a device number"):
        P.parse_provider("cpu:1")


def test_cuda_device_reaches_the_session(monkeypatch):
    seen = []
    _fake_gpu_build(monkeypatch, cuda_initialises=True, seen=seen)
    assert P.select_providers(("cuda:1", "cpu")) == ["cuda:1", "cpu"]
    P.create_session(P.PROBE_MODEL, ["cuda:1", "cpu"])
    assert seen[-1][0] == ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC", "device_id": "1"})
    assert seen[-1][1] == ("CPUExecutionProvider", {})


def test_why_cuda_failed_is_kept_and_explained(monkeypatch):
    from ofer_live.commands.doctor import cuda_advice

    _fake_gpu_build(monkeypatch, cuda_initialises=False, raise_on_cuda=True)
    assert not P.provider_works("CUDAExecutionProvider")
    assert "no CUDA-capable device" in P.probe_error("cuda")
    advice = cuda_advice("libcudnn.so.9: cannot open shared object file: No such file or directory")
    assert "cuDNN" in advice and "--providers cpu" in advice and "\n" not in advice
    assert "CUDA runtime" in cuda_advice("libcublasLt.so.12: cannot open shared object file")
