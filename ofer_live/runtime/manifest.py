"""manifest.json reading and sha256 checks for the exported models.

Layout (written by ofer_live.export)::

    {"schema": 1, "models": {"occlusion": {"file": "occlusion.onnx", "sha256": "...", ...}, ...}}
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ofer_live.contracts import MANIFEST_NAME, MODEL_FILES, SCHEMA_VERSION
from ofer_live.errors import ModelError

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(models_dir: str | Path) -> dict[str, Any]:
    """Parse ``models_dir/manifest.json``; ModelError naming the file and the field when it is unusable."""
    path = Path(models_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{path}: file not found (every models folder needs a {MANIFEST_NAME})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot be read ({exc})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: not a JSON object")
    if "schema" in manifest and manifest["schema"] != SCHEMA_VERSION:
        raise ModelError(f"{path}: field 'schema' is {manifest['schema']!r}, expected {SCHEMA_VERSION}")
    if not isinstance(manifest.get("models"), dict):
        raise ModelError(f"{path}: field 'models' is missing or not an object")
    return manifest


def manifest_entry(manifest: dict[str, Any], name: str, models_dir: str | Path) -> dict[str, Any]:
    """The manifest entry of model ``name``; ModelError if it is missing or has no usable sha256/file."""
    path = Path(models_dir) / MANIFEST_NAME
    entry = manifest["models"].get(name)
    if not isinstance(entry, dict):
        raise ModelError(f"{path}: field 'models.{name}' is missing")
    sha = entry.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ModelError(f"{path}: field 'models.{name}.sha256' is missing or not a sha256 hex digest")
    file = entry.get("file", MODEL_FILES[name])
    if not isinstance(file, str) or not file or Path(file).name != file:
        raise ModelError(f"{path}: field 'models.{name}.file' must be a plain file name, got {file!r}")
    return entry


def variant_entry(entry: dict[str, Any], name: str, precision: str, models_dir: str | Path) -> dict[str, Any] | None:
    """The manifest record of model ``name``'s ``precision`` variant (e.g. ``models.occlusion.int8``), or None when
    the manifest lists none; ModelError if it is malformed."""
    variant = entry.get(precision)
    if variant is None:
        return None
    path = Path(models_dir) / MANIFEST_NAME
    field = f"models.{name}.{precision}"
    if not isinstance(variant, dict):
        raise ModelError(f"{path}: field '{field}' is not an object")
    sha, file = variant.get("sha256"), variant.get("file")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ModelError(f"{path}: field '{field}.sha256' is missing or not a sha256 hex digest")
    if not isinstance(file, str) or not file or Path(file).name != file:
        raise ModelError(f"{path}: field '{field}.file' must be a plain file name, got {file!r}")
    return variant


def verify_checksum(data: bytes, entry: dict[str, Any], name: str, model_path: Path) -> str:
    """Check ``data`` (the model file's bytes) against the manifest entry; return the digest."""
    actual = sha256_bytes(data)
    expected = str(entry["sha256"]).lower()
    if actual != expected:
        raise ModelError(
            f"{model_path}: sha256 {actual[:12]}… does not match {MANIFEST_NAME} field "
            f"'models.{name}.sha256' ({expected[:12]}…); the file was modified or the manifest is stale"
        )
    return actual
