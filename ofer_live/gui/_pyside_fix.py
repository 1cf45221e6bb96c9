"""Work around a reference-count bug of PySide6 6.12 on CPython < 3.12.

PySide6-Essentials 6.12.0 (abi3 wheel) returns ``None`` from every void method (``QPainter.setPen``,
``QLabel.setText``...) and ``True`` from ``Signal.emit``/``connect`` without taking a reference. From
Python 3.12 on these objects are immortal (PEP 683), so nothing happens; on 3.10/3.11 each call drops one
reference and after a few hundred signals or a few thousand painter calls the interpreter aborts with
``Fatal Python error: none_dealloc`` (or ``bool_dealloc``).

The fix does what Python 3.12 does: it gives ``None``, ``True`` and ``False`` a reference count so large
(2**40) that the missing references can never bring it to zero. It is applied once, when ``ofer_live.gui``
is imported, costs nothing at run time and is skipped where it is not needed or not safe (Python >= 3.12,
PyPy, builds whose object header differs).
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_HEADROOM = 1 << 40
_applied = False


def apply() -> bool:
    """Make None/True/False effectively immortal on CPython < 3.12. Returns True when applied (idempotent)."""
    global _applied
    if _applied:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12) or hasattr(sys, "getobjects"):
        return False
    for obj in (None, True, False):
        cell = ctypes.c_ssize_t.from_address(id(obj))
        # ob_refcnt is the first field of a PyObject on release and Py_REF_DEBUG builds; check before writing.
        if abs(cell.value - (sys.getrefcount(obj) - 1)) > 64:
            log.warning("unexpected object layout; PySide6 refcount workaround not applied")
            return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _HEADROOM
    _applied = True
    return True
