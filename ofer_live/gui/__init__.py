"""ofer_live.gui"""
