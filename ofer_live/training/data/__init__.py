"""Training data: loaders (FER+, UTKFace, user folders, occluder cut-outs), synthetic occlusion, caches, datasets.

Everything but ``datasets`` (torch ``Dataset`` classes) is numpy + OpenCV, so ``ofer-live eval`` runs without torch.
"""
