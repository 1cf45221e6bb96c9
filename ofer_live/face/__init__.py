"""ofer_live.face"""
