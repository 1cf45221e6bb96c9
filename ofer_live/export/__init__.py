"""ofer_live.export"""
