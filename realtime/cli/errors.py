"""The one-line errors of the live commands: `prog: error: what`, exit status 2."""
from __future__ import annotations

import sys

__all__ = ["cli_error", "first_line"]


def first_line(problem: str | BaseException) -> str:
    """An exception's first message line (its repr when it has no message); a text as it is."""
    if not isinstance(problem, BaseException):
        return problem
    text = str(problem)
    return text.splitlines()[0] if text else repr(problem)


def cli_error(prog: str, problem: str | BaseException) -> int:
    """Print `prog: error: <first line>` to stderr; returns the exit status 2."""
    print(f"{prog}: error: {first_line(problem)}", file=sys.stderr)
    return 2
