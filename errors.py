"""The root of every error fieldtruth raises on purpose.

Each room has its own ``errors.py`` whose root error subclasses :class:`FieldtruthError`, and whose
specific errors also inherit the matching built-in (``class ImageryReadError(ImageryError, OSError)``),
as rasterio does. The command line turns any :class:`FieldtruthError` into a one-line message and a
non-zero exit; anything else is a bug and keeps its traceback.
"""


class FieldtruthError(Exception):
    """Base class of all errors raised deliberately by fieldtruth."""
