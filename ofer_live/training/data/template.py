"""The canonical face template of the run-time aligner (``ofer_live.face.align.TEMPLATE``) for data preparation.

Train-time crops must frame faces like run-time crops, so the cache builder warps every training face with the
run-time ``align_face`` and the occlusion synthesiser places cut-outs by the template's keypoints.
"""

from __future__ import annotations

import numpy as np


def template_keypoints() -> np.ndarray:
    """-> (6, 2) float32 unit (x, y): eye (image left), eye (image right), nose tip, mouth centre, ear (image left),
    ear (image right): the detector's keypoint order (subject's right eye first, which is on the image's left)."""
    from ofer_live.face.align import TEMPLATE

    return np.asarray(TEMPLATE, dtype=np.float32).copy()
