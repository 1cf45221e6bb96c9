"""ofer_live.training"""
