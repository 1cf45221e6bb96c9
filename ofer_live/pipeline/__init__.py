"""ofer_live.pipeline"""
