"""Var types as data: how a value (from project.yml or `--var`) becomes a typed SQL literal, how
values of a type compare, and the rules a var may declare about what its values mean.

Pure: no YAML, no Jinja, no Spark. project.py checks each var's declaration and value with these
when it reads project.yml; render.py checks every `--var` with them before a literal reaches SQL.

A type says what a value looks like (0.9, '2 minutes'); a rule says what it means (a threshold is
a probability, a window lasts at least a second). Both are checked at compile time, so a value of
the right type and the wrong meaning is refused before Spark sees it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

VAR_FROM_CLI = "--var on the command line"   # where an override was set, as errors say it
DURATION = re.compile(r"^\d+(\.\d+)? (second|minute|hour|day)s?$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_DOUBLE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+$")
_TRUE, _FALSE = {"true"}, {"false"}


def duration_seconds(text: str) -> float:
    number, unit = text.split()
    return float(number) * _UNIT_SECONDS[unit.rstrip("s")]


def sql_string(value: str) -> str:
    # Spark reads backslash escapes in string literals; '' would concatenate two literals.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _double(v: Any) -> tuple[str, float]:
    if isinstance(v, bool) or not (isinstance(v, (int, float)) or (isinstance(v, str) and _DOUBLE.match(v.strip()))):
        raise ValueError("a number like 0.9")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError("a finite number")
    return repr(f), f


def _int(v: Any) -> tuple[str, int]:
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, str) and _INT.match(v.strip()))):
        raise ValueError("a whole number like 4096")
    i = int(v)
    return str(i), i


def _interval(v: Any) -> tuple[str, str]:
    text = str(v).strip() if isinstance(v, str) else ""
    if not DURATION.match(text):
        raise ValueError("a duration like '2 minutes' (a number, a space, second/minute/hour/day)")
    return f"INTERVAL '{text}'", text


def _string(v: Any) -> tuple[str, str]:
    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
        raise ValueError("a string")
    return sql_string(str(v)), str(v)


def _boolean(v: Any) -> tuple[str, bool]:
    if isinstance(v, bool):
        b = v
    elif isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        b = v.strip().lower() in _TRUE
    else:
        raise ValueError("true or false")
    return ("TRUE" if b else "FALSE"), b


# Var types as data: each turns a value (from project.yml or --var) into (SQL literal, raw value).
VAR_LITERALS: dict[str, Callable[[Any], tuple[str, Any]]] = {
    "double": _double, "int": _int, "interval": _interval, "string": _string, "boolean": _boolean,
}
# How raw values of a type are ordered: as numbers, an interval by its length in seconds. A type
# not here has no order, so it takes no min or max.
ORDER: dict[str, Callable[[Any], float]] = {"double": float, "int": float, "interval": duration_seconds}
# The types a var may list choices for (a boolean is a choice already); compared as ORDER
# compares them, a string as its text.
CHOICE_TYPES = ("double", "int", "interval", "string")
# The rules a var may declare, as data: the bound each key sets, and what a value must be to keep it.
BOUNDS = {"min": "at least", "min_exclusive": "above", "max": "at most", "max_exclusive": "below"}
RULE_KEYS = (*BOUNDS, "choices")
RULES_HINT = ("a double, int or interval var may declare min or min_exclusive, max or max_exclusive "
              "(e.g. {type: double, min: 0, max: 1, value: 0.9}); any var but a boolean may declare choices: [...]")


def shown(type_: str, value: Any) -> str:
    """A value as the user wrote it, quoted where its type is text: 1.5, -1, '0 seconds'."""
    return repr(str(value)) if type_ in ("interval", "string") else str(value)


def _key(type_: str, raw: Any) -> Any:
    return ORDER[type_](raw) if type_ in ORDER else str(raw)


@dataclass(frozen=True)
class Bound:
    rule: str      # the key as declared: min, min_exclusive, max or max_exclusive
    shown: str     # the bound as project.yml wrote it: 0, '1 second'
    at: float      # where it lies, in ORDER's terms

    @property
    def is_low(self) -> bool:
        return self.rule.startswith("min")

    def admits(self, at: float) -> bool:
        if self.rule == "min":
            return at >= self.at
        if self.rule == "min_exclusive":
            return at > self.at
        if self.rule == "max":
            return at <= self.at
        return at < self.at

    def wants(self) -> str:
        return f"{BOUNDS[self.rule]} {self.shown}"


@dataclass(frozen=True)
class VarRules:
    """What a var's values mean, as declared: a lower and an upper bound, and the choices."""
    type: str
    low: Bound | None = None
    high: Bound | None = None
    choices: tuple[tuple[Any, str], ...] = ()   # (key, as written)

    def broken_by(self, raw: Any) -> tuple[str, str] | None:
        """(what the value must be, the rule's key) for the first rule a raw value breaks, else None."""
        if self.choices and _key(self.type, raw) not in {k for k, _ in self.choices}:
            return f"must be one of {', '.join(s for _, s in self.choices)}", "choices"
        for bound in (self.low, self.high):
            if bound is not None and not bound.admits(_key(self.type, raw)):
                return f"must be {bound.wants()}", bound.rule
        return None


def declare(type_: str, declared: dict[str, Any]) -> VarRules:
    """The rules a var of `type_` declares (its keys among RULE_KEYS, None for absent), checked:
    each fits the type, and some value keeps them all. Raises ValueError saying what is wrong."""
    given = {k: v for k, v in declared.items() if v is not None}
    if given and type_ == "boolean":
        raise ValueError(f"a boolean var takes no rules (it is true or false already), got {', '.join(given)}")
    bounds = [k for k in BOUNDS if k in given]
    if bounds and type_ not in ORDER:
        raise ValueError(f"{bounds[0]} is for double, int and interval vars, not {type_}")
    for low_or_high in ("min", "max"):
        if low_or_high in given and f"{low_or_high}_exclusive" in given:
            raise ValueError(f"declares both {low_or_high} and {low_or_high}_exclusive: keep one")
    parsed: dict[str, Bound] = {}
    for rule in bounds:
        try:
            _, raw = VAR_LITERALS[type_](given[rule])
        except ValueError as e:
            raise ValueError(f"{rule} needs {e}, got {given[rule]!r}") from None
        parsed[rule] = Bound(rule, shown(type_, given[rule]), ORDER[type_](raw))
    low = next((b for b in parsed.values() if b.is_low), None)
    high = next((b for b in parsed.values() if not b.is_low), None)
    if low and high and not _room_between(type_, low, high):
        raise ValueError(f"no value is {low.wants()} and {high.wants()}")
    choices: list[tuple[Any, str]] = []
    if "choices" in given:
        values = given["choices"]
        if type_ not in CHOICE_TYPES or not isinstance(values, list) or not values:
            raise ValueError(f"choices must be a non-empty list of {type_} values, e.g. choices: [1 minute, 5 minutes], "
                             f"got {values!r}")
        for value in values:
            try:
                _, raw = VAR_LITERALS[type_](value)
            except ValueError as e:
                raise ValueError(f"choice {value!r} is not {type_}: it needs {e}") from None
            for bound in (low, high):
                if bound is not None and not bound.admits(_key(type_, raw)):
                    raise ValueError(f"choice {shown(type_, value)} is not {bound.wants()}")
            choices.append((_key(type_, raw), shown(type_, value)))
    return VarRules(type_, low, high, tuple(choices))


def _room_between(type_: str, low: Bound, high: Bound) -> bool:
    """Whether some value keeps both bounds: an int needs a whole number between them."""
    if type_ == "int":
        lowest = math.floor(low.at) + 1 if low.rule == "min_exclusive" else math.ceil(low.at)
        highest = math.ceil(high.at) - 1 if high.rule == "max_exclusive" else math.floor(high.at)
        return lowest <= highest
    return low.at < high.at or (low.at == high.at and low.rule == "min" and high.rule == "max")


def checked(name: str, type_: str, rules: VarRules | None, value: Any,
            declared_at: str | None = None) -> tuple[str, Any]:
    """(SQL literal, raw value) of var `name` set to `value`. Raises TypeError when the value is
    not of the type, ValueError when it breaks a declared rule, each in one line naming the var,
    the value and the type or rule (with `declared_at`, where that rule is written)."""
    try:
        literal, raw = VAR_LITERALS[type_](value)
    except ValueError as e:
        raise TypeError(f"var '{name}' is {type_} and needs {e}; got {value!r}") from None
    broken = rules.broken_by(raw) if rules else None
    if broken:
        must, rule = broken
        raise ValueError(f"var '{name}' = {shown(type_, value)} {must} "
                         f"(its {rule}{', ' + declared_at if declared_at else ''})")
    return literal, raw
