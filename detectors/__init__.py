"""Detectors: PyTorch point detectors (architectures, labelled scenes, training, evaluation, model bundles),
non-learned baselines, and leave-scenes-out cross-validation.

A detector turns a chip of raw band values into points (centre of a site, class, score). Bundles are
one safetensors file with the model card in its metadata; nothing is ever unpickled.
"""
