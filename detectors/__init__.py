"""Detectors: PyTorch point detectors (architectures, labelled scenes, training, evaluation, model bundles),
non-learned baselines, and leave-scenes-out cross-validation.

A detector turns a chip of raw band values into points (centre of a site, class, score). Bundles are
one safetensors file with the model card in its metadata; nothing is ever unpickled.

Where things are:

- architectures: ``registry`` (the table bundles name them by), ``model`` (CentreNet), ``ensemble``,
  ``tvmodels`` (FCOS), ``filters`` (the non-learned baselines' networks);
- data: ``labels`` (label files onto a scene's pixels), ``data`` (scenes in memory, chips, targets),
  ``sceneoffset`` (per-scene water-level offsets);
- training: ``config`` (TrainConfig and the presets), ``train`` (scenes to bundle), ``fit`` (the loop),
  ``checkpoint``, ``baseline`` (threshold-only fitting of the baselines);
- running: ``predict`` (pixels to points), ``inference`` (the network made ready: batch norm folded),
  ``device`` (cpu, cuda or auto), ``scangrid`` (detecting on the grid a scan reads, its tile cores);
- measuring: ``evaluate`` (matching), ``metrics`` (typed figures), ``report`` (evaluation reports),
  ``crossval``;
- files: ``bundle``, ``card``.
"""
