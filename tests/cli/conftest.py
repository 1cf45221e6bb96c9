"""Helpers for CLI tests: run `ofer-live` in-process or in a subprocess, and break model folders."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ofer_live import contracts as C


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def ofer(capsys):
    """ofer(*argv) -> Result: runs ofer_live.cli.main in this process (fast)."""
    from ofer_live.cli import main

    def run(*argv: object) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def ofer_subprocess(cli_python):
    """ofer_subprocess(*argv) -> Result: runs `python -m ofer_live.cli` (checks real stderr, no traceback)."""

    def run(*argv: object, timeout: float = 120) -> Result:
        proc = subprocess.run([*cli_python, *(str(a) for a in argv)], capture_output=True, text=True, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """The run failed with exit 2 and exactly one `ofer-live: error:` line containing every fragment."""
    assert result.code == 2, (result.code, result.out, result.err)
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.startswith("ofer-live: error:")]
    assert len(lines) == 1, result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def models_copy(tiny_models_dir, tmp_path) -> Path:
    """A private copy of the tiny models that a test may break."""
    return Path(shutil.copytree(tiny_models_dir, tmp_path / "models"))


def rewrite_model(models_dir: Path, kind: str, edit) -> None:
    """Load ``kind``'s ONNX file, let ``edit(model_proto)`` change it, save, and re-sign the manifest."""
    onnx = pytest.importorskip("onnx")
    path = models_dir / C.MODEL_FILES[kind]
    proto = onnx.load(str(path))
    edit(proto)
    onnx.save(proto, str(path))
    manifest = json.loads((models_dir / C.MANIFEST_NAME).read_text())
    manifest["models"][kind]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (models_dir / C.MANIFEST_NAME).write_text(json.dumps(manifest))


def set_metadata_field(proto, field: str, value) -> None:
    for prop in proto.metadata_props:
        if prop.key == C.METADATA_KEY:
            meta = json.loads(prop.value)
            meta[field] = value
            prop.value = json.dumps(meta)


@pytest.fixture
def one_line_error():
    """one_line_error(result, *fragments) -> the error line (asserts exit 2, one line, no traceback)."""
    return assert_one_line_error


@pytest.fixture
def edit_model():
    """edit_model(models_dir, kind, edit) rewrites one ONNX file and re-signs the manifest."""
    return rewrite_model


@pytest.fixture
def set_meta():
    """set_meta(proto, field, value): change one field of the ofer_live metadata of an ONNX ModelProto."""
    return set_metadata_field
