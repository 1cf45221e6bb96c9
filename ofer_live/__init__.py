"""ofer_live: real-time occlusion-robust facial expression recognition (Latent-OFER, ICCV 2023)."""

__version__ = "0.1.0"

import os as _os
import sys as _sys

if _sys.platform == "win32":  # Media Foundation's hardware transforms make webcams take 10-30 s to open
    _os.environ.setdefault("OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS", "0")
