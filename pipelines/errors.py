"""Errors of the pipelines room."""

from fieldtruth.errors import FieldtruthError


class PipelineError(FieldtruthError):
    """Root of every error raised while orchestrating a run."""


class RunFolderError(PipelineError, ValueError):
    """A run folder is missing, incomplete, or belongs to a different run."""


class ClusterError(PipelineError, ConnectionError):
    """The Dask scheduler could not be reached or the cluster could not start."""


class PreflightError(PipelineError, ValueError):
    """A scan cannot start: its detector, AOI and scenes cannot be read or do not go together (found
    before anything is written or a cluster starts; the command line exits with status 2)."""



class DatasetError(PipelineError, ValueError):
    """A training dataset cannot be built from the inventory and imagery given (no scene found, no site
    inside any scene, a split that would put one region in two sets, ...)."""
