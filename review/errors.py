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


class FieldFileError(ReviewError, ValueError):
    """A file of field decisions has bad rows; nothing of it was applied.

    Attributes:
        problems: One ``(line, message)`` per bad row, in file order.
    """

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = "; ".join(f"line {line}: {msg}" for line, msg in problems[:20])
        more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(
            f"expected every row of {path!r} to be a valid decision; {len(problems)} bad row(s), so NOTHING "
            f"was applied: {lines}{more}. Fix those rows and import the whole file again."
        )


class NotActionableError(ReviewError, ValueError):
    """No site of the run meets the rule for an actionable export, or the chain does not verify."""


class ErasureError(ReviewError, OSError):
    """A site could not be erased from a file of the run folder."""


class SiteFactsMismatchError(LedgerTamperedError):
    """The run's detections no longer say what the decisions about a site were made on (a moved lead)."""


class DecisionsFileError(ReviewError, ValueError):
    """A decisions file exported from a map is refused whole: damaged, edited, forged or for another run."""


class StaleDecisionsError(ReviewError, ValueError):
    """A decisions file holds decisions on sites whose ledger moved on since the map was drawn.

    Attributes:
        stale: One message per stale decision; nothing of the file was applied.
    """

    def __init__(self, path: str, stale: list[str]) -> None:
        self.path = path
        self.stale = stale
        shown = "; ".join(stale[:20]) + (f"; and {len(stale) - 20} more" if len(stale) > 20 else "")
        super().__init__(
            f"expected decisions made on the ledger's latest state; {len(stale)} decision(s) in {path!r} "
            "were "
            f"made on a map drawn before newer decisions on the same site, so NOTHING was applied: {shown}. "
            "Look at those sites again (`fieldtruth review show RUN SITE`), then import with --stale skip "
            "(apply the others) or --stale apply (record them too, after the newer ones)."
        )


class FieldFormError(ReviewError, ValueError):
    """A decision form (XLSForm) cannot be written for a run, e.g. because it has no open lead."""


class QueueOrderError(ReviewError, ValueError):
    """The verification queue cannot be put in the order asked for (unknown, or the run lacks what it
    needs)."""
