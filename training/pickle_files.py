"""Reading the pickles users hand us (label files, score files): a folder, a missing file or bytes that are not a
pickle is a ValueError / FileNotFoundError naming the file and what was expected, never a bare unpickling error."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

__all__ = ["read_pickle"]

# what pickle.load raises on bytes that are not a pickle (or a pickle of classes that are not importable here)
_NOT_A_PICKLE = (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, IndexError, KeyError,
                 TypeError)


def read_pickle(path: str | Path, what: str, hint: str = "") -> Any:
    """The object pickled in `path`; `what` names the expected content in errors ("a label pickle"); `hint` is
    added to the error for a folder (which file to give instead)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected {what}{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected {what}")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except _NOT_A_PICKLE as err:
        raise ValueError(f"{path}: not {what} ({type(err).__name__}: {err})") from err
