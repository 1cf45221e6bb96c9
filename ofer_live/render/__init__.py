"""ofer_live.render"""
