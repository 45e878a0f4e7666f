"""Statement parameters: how a SQL text names them, checked alike for every driver.

A statement takes its values either by name (``:a``, ``@a``, ``$a``; one value per name,
however often it appears) or by position (``?`` and ``?N``, as SQLite numbers them), never
both. Text inside string literals, quoted identifiers and comments is not a parameter.
The checks here run before any I/O, so that every backend rejects the same arguments with
the same ValidationError: a local sqlite3 connection would bind some of them silently,
and the remote servers disagree with each other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import ValidationError

_TOKEN = re.compile(
    r"""'[^']*(?:'|\Z)"""  # a string literal ('it''s' is two adjacent ones: no gap)
    r"""|"[^"]*(?:"|\Z)|`[^`]*(?:`|\Z)|\[[^\]]*(?:\]|\Z)"""  # quoted identifiers
    r"""|--[^\n]*|/\*.*?(?:\*/|\Z)"""  # comments
    r"""|(?<![\w$])[:@$](\w+)"""  # a named parameter (not the '$' inside an identifier)
    r"""|\?(\d*)""",  # a positional one
    re.DOTALL,
)


class Params:
    """The parameters of one SQL text.

    ``names``: the named parameters without prefix, in order of first appearance (SQLite
    numbers them so); ``positional``: how many values a sequence must hold (the largest
    ``?N``, a bare ``?`` being one more than the largest before it); ``numbered``: the SQL
    with each name rewritten to ``?N``, N its place in ``names`` (the text itself when it
    has no names), which every libSQL server binds alike.
    """

    __slots__ = ("names", "numbered", "positional")

    def __init__(self, names: tuple[str, ...], positional: int, numbered: str) -> None:
        self.names = names
        self.positional = positional
        self.numbered = numbered

    def check(self, args: Sequence[Any] | dict[str, Any]) -> None:
        """Raise ValidationError unless ``args`` (keys without prefix) fit this statement."""
        if isinstance(args, dict):
            if not self.names:
                if self.positional:
                    raise ValidationError(
                        "the statement takes its values by position (?); pass a sequence"
                    )
                if args:
                    raise ValidationError(
                        f"named arguments not used by the statement: {sorted(args)}"
                    )
                return
            missing = [name for name in self.names if name not in args]
            if missing:
                raise ValidationError(f"no value given for the named parameters {missing}")
            if len(args) != len(self.names):
                unused = sorted(set(args) - set(self.names))
                raise ValidationError(f"named arguments not used by the statement: {unused}")
        elif self.names:
            raise ValidationError(
                f"the statement has named parameters {list(self.names)}: "
                "pass a mapping of their values, not a sequence"
            )
        elif len(args) != self.positional:
            raise ValidationError(
                f"the statement takes {self.positional} positional values, {len(args)} given"
            )


_PARAMS: dict[str, Params] = {}
"""Parsed SQL texts (domains reuse a few fixed texts; bounded)."""


def params_of(sql: str) -> Params:
    """The parameters of ``sql``; ValidationError when it mixes ``?`` with names."""
    cached = _PARAMS.get(sql)
    if cached is not None:
        return cached
    names: dict[str, int] = {}
    positional = 0
    pieces: list[str] = []
    done = 0
    for match in _TOKEN.finditer(sql):
        name, number = match.group(1, 2)
        if name is not None:
            if positional:
                raise _mixed()
            index = names.setdefault(name, len(names) + 1)
            pieces.append(sql[done : match.start()])
            pieces.append(f"?{index}")
            done = match.end()
        elif number is not None:
            if names:
                raise _mixed()
            positional = max(positional, int(number)) if number else positional + 1
    numbered = "".join(pieces) + sql[done:] if names else sql
    params = Params(tuple(names), positional, numbered)
    if len(_PARAMS) < 4096:
        _PARAMS[sql] = params
    return params


def _mixed() -> ValidationError:
    return ValidationError("a statement cannot mix '?' parameters with named parameters")
