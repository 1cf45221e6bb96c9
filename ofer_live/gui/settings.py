"""Persistent user settings (QSettings): last source, overlay toggles, sensitivity, output folder.

The app uses the native per-user store (organisation ``ofer_live``, application ``ofer-live``; on Linux
``$XDG_CONFIG_HOME/ofer_live/ofer-live.conf``). Tests and scripts pass an INI file path instead, so they
never touch the user's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "ofer_live"
APPLICATION = "ofer-live"

# Overlay / analysis toggles shown in the window, with their defaults.
TOGGLE_DEFAULTS: dict[str, bool] = {
    "grid": True,
    "reconstruction": True,
    "cam": False,
    "bars": True,
    "smoothing": True,
}


@dataclass
class StoredSettings:
    """The remembered values (None = never stored)."""

    source: str | None = None
    output_dir: str | None = None
    sensitivity: float | None = None
    save_clean: bool = False
    toggles: dict[str, bool] | None = None


def _to_bool(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class AppSettings:
    """Typed access to the app's QSettings."""

    def __init__(self, qsettings: QSettings) -> None:
        self._q = qsettings

    @classmethod
    def open(cls, path: str | Path | None = None) -> AppSettings:
        """The user's settings, or an INI file at ``path`` (tests, scripts)."""
        if path is None:
            return cls(QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION))
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    @property
    def file_name(self) -> str:
        return self._q.fileName()

    def load(self) -> StoredSettings:
        q = self._q
        source = q.value("source/last")
        output_dir = q.value("output/dir")
        sensitivity = q.value("analysis/sensitivity")
        try:
            sensitivity = float(sensitivity) if sensitivity is not None else None
        except (TypeError, ValueError):
            sensitivity = None
        toggles = None
        if q.contains("toggles/grid"):
            toggles = {name: _to_bool(q.value(f"toggles/{name}"), default) for name, default in TOGGLE_DEFAULTS.items()}
        return StoredSettings(
            source=str(source) if source else None,
            output_dir=str(output_dir) if output_dir else None,
            sensitivity=sensitivity,
            save_clean=_to_bool(q.value("output/save_clean"), False),
            toggles=toggles,
        )

    def save(self, stored: StoredSettings) -> None:
        q = self._q
        for f in fields(stored):
            value = getattr(stored, f.name)
            if f.name == "toggles":
                for name, on in (value or {}).items():
                    q.setValue(f"toggles/{name}", bool(on))
            elif f.name == "source":
                if value:
                    q.setValue("source/last", value)
            elif f.name == "output_dir":
                if value:
                    q.setValue("output/dir", value)
            elif f.name == "sensitivity":
                if value is not None:
                    q.setValue("analysis/sensitivity", float(value))
            elif f.name == "save_clean":
                q.setValue("output/save_clean", bool(value))
        q.sync()
