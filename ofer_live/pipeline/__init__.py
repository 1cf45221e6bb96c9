"""ofer_live.pipeline: the per-frame pipeline, probability smoothing and the newest-wins mailbox."""

from ofer_live.pipeline.frame_pipeline import STAGES, FramePipeline, occlusion_mask
from ofer_live.pipeline.latest_slot import LatestSlot
from ofer_live.pipeline.smoothing import ProbabilitySmoother

__all__ = ["STAGES", "FramePipeline", "LatestSlot", "ProbabilitySmoother", "occlusion_mask"]
