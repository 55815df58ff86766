"""Config values as users write them: YAML text (where `1e-3` is a float) checked against dataclass type hints.

One reader and one checker for every place a user types settings: training configs and `--set` overrides
(`sttr.training.config`) and `sttr convert --set` (model fields). Numpy- and torch-free.
"""
from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["EXP_FLOAT", "load_yaml", "check_value"]

# Floats in exponent form without a dot or an exponent sign (1e-3, 5E4): floats in YAML 1.2 and Python that
# PyYAML's YAML 1.1 resolver leaves as strings.
EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
_LOADER = None


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, except that 1e-3 (no dot, as Python and YAML 1.2 write it) is a float, not a string."""
    global _LOADER
    import yaml  # a declared dependency; imported here so that model/ stays importable without it

    if _LOADER is None:
        class Loader(yaml.SafeLoader):
            """yaml.SafeLoader that also reads 1e-3 as a float."""

        Loader.add_implicit_resolver("tag:yaml.org,2002:float", EXP_FLOAT, list("-+0123456789."))
        _LOADER = Loader
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping",
          list: "a list", tuple: "a list"}
_PLURALS = {int: "integers", float: "numbers", str: "strings"}


def _name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return f"one of {list(typing.get_args(hint))}"
    base = typing.get_origin(hint) or hint
    return _NAMES.get(base, getattr(base, "__name__", str(base)))


def check_value(value: Any, hint: Any, key: str, label: str = "{key!r}") -> Any:
    """`value` checked against the type hint `hint`, mildly coerced (int -> float, `"1e-3"` -> float, a list for a
    tuple); ValueError "<label>: expected <what>, got <value>" otherwise, `label` formatted with the key (an item of
    a list is `key[i]`), e.g. "config key {key!r}" -> "config key 'optim.lr'"."""
    where = label.format(key=key)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for arg in options:
            try:
                return check_value(value, arg, key, label)
            except ValueError:
                continue
        raise ValueError(f"{where}: expected {' or '.join(_name(a) for a in options)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:  # fixed length, e.g. window_blocks
            if len(value) != len(args):
                same = _PLURALS.get(args[0]) if len(set(args)) == 1 else None
                what = same or f"({', '.join(map(_name, args))})"
                raise ValueError(f"{where}: expected a list of {len(args)} {what}, got {value!r}")
            return tuple(check_value(v, a, f"{key}[{i}]", label) for i, (v, a) in enumerate(zip(value, args)))
        return [check_value(v, args[0], f"{key}[{i}]", label) for i, v in enumerate(value)] if args \
            else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and EXP_FLOAT.match(value.strip()):
        return float(value.replace("_", ""))  # 1e-3 from a YAML 1.1 reader
    # any plain type: model.layout is `str | dict`, so a number must fail both; True is not an int here
    if isinstance(hint, type) and (not isinstance(value, hint) or (hint in (int, float) and isinstance(value, bool))):
        raise ValueError(f"{where}: expected {_name(hint)}, got {value!r}")
    return value
