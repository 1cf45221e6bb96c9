"""``ofer-live eval``: what the shipped models and the app's pipeline score on labelled data.

Numpy, OpenCV and ONNX Runtime only (no torch): every measurement runs the exported models through
``pipeline.FramePipeline.process_aligned``, the code the app runs, so eval measures what the app does.

- ``measure``: the paper's measurements (accuracy, occlusion curves, pasted cut-outs, detection, reconstruction,
  ablation) on FER+ valid and held-out UTKFace;
- ``report``: report.json, report.md and the plots;
- ``input_paths``: the app's ways in (crops, detection, colour against gray), ``eval --input-paths``.
"""
