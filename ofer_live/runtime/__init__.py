"""ofer_live.runtime"""
