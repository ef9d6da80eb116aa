"""The split a scene folder was built for, and the refusal to use it for another role.

``fieldtruth dataset build`` writes ``split.json`` into every scene folder it makes, naming the set
(``train``, ``validation`` or ``test``) whose ground the scene lies on. Training refuses a scene of the
validation or test set, validation refuses one of the test set, and evaluation refuses any scene that is
not of the test set: a detector is then never measured on ground it learned from or was tuned on. A scene
folder without ``split.json`` (made by hand, sen2ships) is taken as it is given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from fieldtruth.detectors.errors import SplitCrossedError

log = logging.getLogger(__name__)

#: The file recording a scene folder's set.
SPLIT_FILE = "split.json"
#: Role -> the recorded sets a scene may have to be used in it.
ALLOWED = {
    "training": ("train",),
    "validation": ("validation", "train"),
    "evaluation": ("test",),
}


def recorded_split(folder: Path) -> str | None:
    """The set a scene folder was built for, or None when it records none.

    Raises:
        SplitCrossedError: ``split.json`` is unreadable or names no set (it must not be guessed).
    """
    path = Path(folder) / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        split = json.loads(path.read_text(encoding="utf-8")).get("split")
    except (OSError, ValueError, AttributeError) as exc:
        raise SplitCrossedError(f"{str(path)!r} cannot be read as a split record ({type(exc).__name__}); "
                                "rebuild the dataset or remove the file") from exc
    if split not in ("train", "validation", "test"):
        raise SplitCrossedError(f"{str(path)!r} names set {split!r}; expected train, validation or test")
    return str(split)


def check_roles(folders: Sequence[Path], role: str) -> None:
    """Refuse scene folders whose recorded set does not allow ``role`` (see :data:`ALLOWED`).

    Raises:
        SplitCrossedError: naming the scenes, their set, the role and the fix.
        ValueError: an unknown role.
    """
    if role not in ALLOWED:
        raise ValueError(f"role must be one of {sorted(ALLOWED)!r}, got {role!r}")
    recorded = [(str(f), recorded_split(f)) for f in folders]
    crossed = [(path, s) for path, s in recorded if s is not None and s not in ALLOWED[role]]
    if crossed:
        shown = ", ".join(f"{path!r} ({split})" for path, split in crossed[:5])
        more = f" and {len(crossed) - 5} more" if len(crossed) > 5 else ""
        raise SplitCrossedError(
            f"{role} refuses scene(s) of another set: {shown}{more}; {role} takes scenes of the "
            f"{' or '.join(ALLOWED[role])} set of a built dataset (its {SPLIT_FILE} says so): give "
            "the folders under the dataset's matching set")
