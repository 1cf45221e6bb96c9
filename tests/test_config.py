"""Settings: each dataclass validates its own fields; ``layered`` is the one precedence rule."""

from __future__ import annotations

import pytest

from ofer_live.config import PipelineConfig, RuntimeConfig, layered, load_config
from ofer_live.errors import UserError


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sensitivity", -0.1),
        ("sensitivity", float("nan")),
        ("smoothing_alpha", 0.0),
        ("smoothing_alpha", 1.5),
        ("min_face_px", -1),
        ("max_faces", 0),
        ("detection_confidence", 1.2),
    ],
)
def test_pipeline_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(UserError, match=rf"^PipelineConfig\.{field} must be .*, got") as info:
        PipelineConfig(**{field: value})
    assert "\n" not in str(info.value)


def test_zero_sensitivity_is_valid_and_runtime_threads_are_checked():
    assert PipelineConfig(sensitivity=0.0).sensitivity == 0.0  # no patch counts as occluded
    with pytest.raises(UserError, match=r"RuntimeConfig\.intra_op_threads"):
        RuntimeConfig(intra_op_threads=-2)


def test_layered_precedence():
    toml = PipelineConfig(sensitivity=1.5, max_faces=3)
    saved = {"sensitivity": 2.0, "smoothing": True}
    flags = {"sensitivity": 0.5, "max_faces": None}  # None: not given on the command line
    out = layered(toml, saved, flags)
    assert (out.sensitivity, out.smoothing, out.max_faces) == (0.5, True, 3)
    assert layered(toml, saved, None).sensitivity == 2.0
    assert layered(toml) is toml
    with pytest.raises(UserError, match="unknown setting"):
        layered(toml, {"sensitivty": 1.0})
    with pytest.raises(UserError, match=r"PipelineConfig\.sensitivity"):
        layered(toml, {"sensitivity": -1.0})


def test_a_bad_toml_value_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[pipeline]\nmax_faces = 0\n")
    with pytest.raises(UserError, match=r"PipelineConfig\.max_faces must be 1 or more, got 0"):
        load_config(path)
