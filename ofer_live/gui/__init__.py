"""ofer_live.gui: the PySide6 desktop app (window, controller, capture/inference/recorder threads).

Importing this package is light: Qt is imported only by the submodules that need it
(``app``, ``controller``, ``main_window``, ``widgets``, ``workers``, ``settings``). ``display`` and
``sources`` are Qt-free so the command line can check the environment before loading Qt.

PySide6 is pinned below 6.12 in pyproject.toml: 6.12.0 drops references to None/True on Python < 3.12
and aborts the interpreter after a few hundred signals (``none_dealloc``).
"""
