"""ofer_live.io"""
