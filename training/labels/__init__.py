"""Class-name lists shipped with sttr (NTU-60, NTU-120, Kinetics-400) and readers for label-name files.

The lists are third-party files; see NOTICE in this folder for their sources and licences.
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["BUILTIN_LABELS", "load_label_names", "read_label_names", "NTU120_MISSING_LIST"]

_HERE = Path(__file__).resolve().parent
BUILTIN_LABELS = {"ntu60": _HERE / "ntu60.txt", "ntu120": _HERE / "ntu120.txt",
                  "kinetics400": _HERE / "kinetics400.txt"}
NTU120_MISSING_LIST = _HERE / "ntu120_missing_skeletons.txt"
# "* A1. drink water. " in the NTU dataset README
_README_LINE = re.compile(r"^\W*A(\d+)\.\s+(.+?)\.?\s*$")


def read_label_names(path: str | Path) -> list[str]:
    """Class names from a file: one name per line (mmaction2/pyskl/st-gcn maps), or the NTU README's `A1. name.`

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it holds no name, or its `A<n>.` entries are not numbered 1..K.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [m for m in (_README_LINE.match(line) for line in lines) if m]
    if numbered:
        ids = [int(m.group(1)) for m in numbered]
        if ids != list(range(1, len(ids) + 1)):
            raise ValueError(f"{path}: expected entries A1., A2., ... in order, got ids {ids[:5]}...")
        return [m.group(2).strip() for m in numbered]
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise ValueError(f"{path}: expected class names, one per line; the file is empty")
    return names


def load_label_names(name_or_path: str | Path) -> list[str]:
    """Class names of a built-in list (`ntu60`, `ntu120`, `kinetics400`) or of a label-name file."""
    key = str(name_or_path).lower()
    if key in BUILTIN_LABELS:
        return read_label_names(BUILTIN_LABELS[key])
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"label names {name_or_path!r}: not a built-in list ({', '.join(BUILTIN_LABELS)}) "
                                f"and no such file")
    return read_label_names(path)
