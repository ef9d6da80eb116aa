"""Errors of the pipelines room."""

from fieldtruth.errors import FieldtruthError


class PipelineError(FieldtruthError):
    """Root of every error raised while orchestrating a run."""


class RunFolderError(PipelineError, ValueError):
    """A run folder is missing, incomplete, or belongs to a different run."""


class ClusterError(PipelineError, ConnectionError):
    """The Dask scheduler could not be reached or the cluster could not start."""


class ScanSettingsError(PipelineError, ValueError):
    """A scan's settings do not go with its detector (e.g. ``--heatmap`` with a box detector)."""
