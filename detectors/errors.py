"""Errors of the detectors room."""

from fieldtruth.errors import FieldtruthError


class DetectorError(FieldtruthError):
    """Root of every error raised while building, training, loading or running a detector."""


class BundleError(DetectorError, ValueError):
    """A model bundle is missing, is not a valid safetensors bundle, or fails its integrity check."""


class InputMismatchError(DetectorError, ValueError):
    """Pixels handed to a detector do not fit its card (band count, shape of the validity mask)."""


class LabelError(DetectorError, ValueError):
    """A label file cannot be read or holds geometry a detector cannot use."""


class TrainingError(DetectorError, RuntimeError):
    """Training cannot go on (no labelled site in the training scenes, scenes that do not fit together)."""


class UnknownArchitectureError(DetectorError, KeyError):
    """A bundle or config names an architecture that is not registered."""

    def __str__(self) -> str:
        """Show the message as written (KeyError would quote it)."""
        return str(self.args[0]) if self.args else ""


class SplitCrossedError(DetectorError, ValueError):
    """A scene recorded for one set of a dataset split (train, validation, test) was given for another
    role (a test scene to train on, a training scene to evaluate on)."""


class DeviceError(DetectorError, RuntimeError):
    """The device asked for (``cuda``) is not available on this machine, or is not a known device."""
