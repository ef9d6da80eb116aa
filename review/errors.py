"""Errors raised by the review room."""

from fieldtruth.errors import FieldtruthError


class ReviewError(FieldtruthError):
    """Root of every error the review room raises on purpose."""


class DetectionsFormatError(ReviewError, ValueError):
    """``detections.parquet`` is missing, unreadable or lacks the columns the run-folder contract names."""


class InvalidDecisionError(ReviewError, ValueError):
    """A decision, method, reviewer id or evidence item does not follow the ledger's rules."""


class UnknownSiteError(ReviewError, KeyError):
    """A decision names a site that was never registered from a run's detections."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable.
        return str(self.args[0]) if self.args else ""


class LedgerError(ReviewError, OSError):
    """The ledger file cannot be opened or has a schema this version does not know."""


class LedgerTamperedError(ReviewError, RuntimeError):
    """The decision chain does not verify: an entry was edited, deleted, reordered or inserted."""
