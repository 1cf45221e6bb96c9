"""ofer_live.gui: the PySide6 desktop app (window, controller, capture/inference/recorder threads).

Importing this package is light: Qt is imported only by the submodules that need it
(``app``, ``controller``, ``main_window``, ``widgets``, ``workers``, ``settings``). ``display`` and
``sources`` are Qt-free so the command line can check the environment before loading Qt.

Importing the package applies ``_pyside_fix`` (PySide6 6.12 drops references to None/True/False on
Python < 3.12, which would abort the interpreter after a few hundred signals).
"""

from ofer_live.gui import _pyside_fix

_pyside_fix.apply()
