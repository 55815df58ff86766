"""Official NTU missing-skeleton lists (302 NTU-60 names, 535 NTU-120 names), with or without their header.

The dataset authors' files start with two lines of English and a blank line; mmaction2's copies are the bare names.
Leading lines that are not sample names are taken as the header; after the first name, anything that is not a
sample name (or blank) is an error.
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["read_missing_list"]

_NAME = re.compile(r"^S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}$")


def read_missing_list(path: str | Path) -> set[str]:
    """Sample names (e.g. `S001C002P005R002A008`) listed in a missing-skeleton file.

    Raises:
        ValueError: a line after the first name is neither blank nor a sample name, or the file lists no name.
    """
    path = Path(path)
    names: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = raw.strip()
        if line.endswith(".skeleton"):
            line = line[: -len(".skeleton")]
        if _NAME.match(line):
            names.append(line)
        elif line and names:
            raise ValueError(f"{path}: line {number}: expected an NTU sample name like S001C002P005R002A008, "
                             f"got {line[:60]!r}")
    if not names:
        raise ValueError(f"{path}: expected a list of NTU sample names, found none")
    return set(names)
