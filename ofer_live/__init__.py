"""ofer_live: real-time occlusion-robust facial expression recognition (Latent-OFER, ICCV 2023)."""

__version__ = "0.1.0"
