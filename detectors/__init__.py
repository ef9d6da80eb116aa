"""Detectors: PyTorch point detectors (architectures, training, evaluation, model bundles) and a baseline.

A detector turns a chip of raw band values into points (centre of a site, class, score). Bundles are
one safetensors file with the model card in its metadata; nothing is ever unpickled.
"""
