"""Is there a display to open a window on? (Qt-free, so the CLI can ask before importing Qt.)"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

# Qt platform plugins that need no display server.
HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb", "vkkhrdisplay"})

NO_DISPLAY_HINT = (
    "no display found (DISPLAY and WAYLAND_DISPLAY are unset); to process a video without a window, "
    "use `ofer-live video INPUT -o OUTPUT`"
)


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Return a one-line reason why no window can be opened, or None when a display is available.

    Only Linux/BSD need a display server; macOS and Windows always have one.
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    qpa = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    if qpa in HEADLESS_PLATFORMS:
        return None
    if not (platform.startswith("linux") or "bsd" in platform):
        return None
    if qpa == "xcb":
        return None if env.get("DISPLAY") else NO_DISPLAY_HINT
    if qpa.startswith("wayland"):
        return None if env.get("WAYLAND_DISPLAY") else NO_DISPLAY_HINT
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return NO_DISPLAY_HINT
