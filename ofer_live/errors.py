"""User-facing errors. The CLI and GUI show ``str(error)`` as one line, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, bad models, bad environment: something the user can fix. One-line message."""


class InputError(UserError):
    """An input file or source cannot be read."""


class OutputError(UserError):
    """An output path cannot be written."""


class ModelError(UserError):
    """A model file is missing, tampered with or does not follow the contract."""
