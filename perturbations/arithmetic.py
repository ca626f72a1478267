"""Math perturbations: shuffle or randomise the numbers or the operators of every step.

Numbers are whole tokens: decimals (3.5), thousands (1,200 or 1,200.50) and plain fractions
(3/4, when not part of a longer expression) stay one number, where the reference's
``[0-9]+`` cut them apart.  Operators are binary arithmetic operators (+ - * / ^, the
Unicode and LaTeX spellings of times, divide and minus) between two operands; hyphens in
words (x-axis, 3-year-old), unit slashes (km/h), dates and unary minus are not operators.
Edits are made at the items' own character spans, so text around them never moves."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .base import (
    Change,
    GoldChain,
    NotApplicable,
    Perturbed,
    SplitContext,
    differing_order,
)


@dataclass(frozen=True)
class Item:
    start: int
    end: int
    text: str


_DATE = re.compile(r"(?<![\d/])\d{1,2}/\d{1,2}/\d{2,4}(?![\d/])")
_NUMBER = re.compile(
    r"(?<![A-Za-z_\d.,])"
    r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # thousands separators, optional decimals
    r"|\d+/\d+(?![\d.])"                 # a plain fraction (checked below)
    r"|\d+\.\d+|\.\d+|\d+)"
    r"(?![\d]|(?:st|nd|rd|th)\b)"        # not glued to more digits, not an ordinal
)
_OPERATOR = re.compile(r"\\times|\\cdot|\\div|[+\-*/^×÷−]")
_EXPR_NEIGHBOURS = set("=+-*/^×÷−<>")
_OPERAND_END = re.compile(r"[A-Za-z0-9)\]}%$]")
_OPERAND_START = re.compile(r"[A-Za-z0-9(\[{\\$.−]")
_CANONICAL = {"×": "*", "\\times": "*", "\\cdot": "*", "÷": "/", "\\div": "/", "−": "-"}
OPERATORS = ("+", "-", "/", "*", "^")  # the replacement alphabet, as in the reference


def canonical(op: str) -> str:
    return _CANONICAL.get(op, op)


def _neighbour(text: str, i: int, step: int) -> str:
    while 0 <= i < len(text) and text[i].isspace():
        i += step
    return text[i] if 0 <= i < len(text) else ""


def _masked_dates(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _DATE.finditer(text)]


def _inside(spans, i) -> bool:
    return any(a <= i < b for a, b in spans)


def numbers(text: str) -> list[Item]:
    dates = _masked_dates(text)
    out = []
    for m in _NUMBER.finditer(text):
        if _inside(dates, m.start()):
            continue
        tok = m.group()
        if "/" in tok and (_neighbour(text, m.start() - 1, -1) in _EXPR_NEIGHBOURS
                           or _neighbour(text, m.end(), 1) in _EXPR_NEIGHBOURS):
            # 48/2=24 is a division, not the fraction 48/2: split it into its two numbers.
            a, b = tok.split("/")
            out.append(Item(m.start(), m.start() + len(a), a))
            out.append(Item(m.end() - len(b), m.end(), b))
            continue
        out.append(Item(m.start(), m.end(), tok))
    return out


def operators(text: str) -> list[Item]:
    dates = _masked_dates(text)
    fractions = [(n.start, n.end) for n in numbers(text) if "/" in n.text]
    out = []
    for m in _OPERATOR.finditer(text):
        i, j = m.span()
        if _inside(dates, i) or _inside(fractions, i):
            continue
        left, right = _neighbour(text, i - 1, -1), _neighbour(text, j, 1)
        if not (left and right and _OPERAND_END.match(left) and _OPERAND_START.match(right)):
            continue  # unary minus, a dangling sign, or a list dash
        if left.isalpha() and not re.search(r"(?:^|[^A-Za-z\\])[A-Za-z]\s*$", text[:i]):
            continue  # after a word ("is -3"), not after a variable ("x - 3", "2x-3")
        if right.isalpha() and not re.match(r"\s*[A-Za-z](?![A-Za-z])", text[j:]):
            continue  # before a word, not before a variable
        if m.group() in "-/" and (re.search(r"[A-Za-z]{2}$", text[:i]) or re.match(r"[A-Za-z]{2}", text[j:])):
            continue  # a hyphen in a word or a unit slash: well-known, x-axis, 3-year-old, km/h
        out.append(Item(i, j, m.group()))
    return out


def _replace(text: str, items: list[Item], new: list[str]) -> str:
    parts, pos = [], 0
    for item, value in zip(items, new):
        parts += [text[pos:item.start], value]
        pos = item.end
    return "".join(parts) + text[pos:]


class _PerStep:
    """Apply an edit to every eligible step; not applicable when no step is eligible."""

    name = ""
    kind = ""
    none_reason = ""

    def items(self, text: str) -> list[Item]:
        raise NotImplementedError

    def edit(self, items: list[Item], rng: random.Random) -> list[str] | None:
        raise NotImplementedError

    def __call__(self, chain: GoldChain, ctx: SplitContext, rng: random.Random):
        steps, changes = list(chain.steps), []
        for k, text in enumerate(steps):
            items = self.items(text)
            new = self.edit(items, rng) if items else None
            if new is None:
                continue
            steps[k] = _replace(text, items, new)
            changes.append(Change(self.kind, step=k, old=text, new=steps[k],
                                  detail={"items": [i.text for i in items], "new_items": new}))
        if not changes:
            return NotApplicable(self.none_reason)
        return Perturbed(tuple(steps), tuple(changes))


def _shuffled(values: list[str], key, rng: random.Random) -> list[str] | None:
    order = differing_order([key(v) for v in values], rng)
    return None if order is None else [values[i] for i in order]


def _number_value(text: str) -> str:
    return text.replace(",", "")


class ShuffleNumbers(_PerStep):
    name, kind, none_reason = "ShuffleNumbers", "shuffle_numbers", "no_number_pair"

    def items(self, text):
        return numbers(text)

    def edit(self, items, rng):
        return _shuffled([i.text for i in items], _number_value, rng)


class ShuffleOperations(_PerStep):
    name, kind, none_reason = "ShuffleOperations", "shuffle_operations", "no_operator_pair"

    def items(self, text):
        return operators(text)

    def edit(self, items, rng):
        return _shuffled([i.text for i in items], canonical, rng)


class RandomNumber(_PerStep):
    """One number per step becomes a random integer from 0 to 100 with a different value."""

    name, kind, none_reason = "RandomNumber", "random_number", "no_number"

    def items(self, text):
        return numbers(text)

    def edit(self, items, rng):
        new = [i.text for i in items]
        k = rng.randrange(len(new))
        old = _number_value(new[k])
        while True:
            value = str(rng.randint(0, 100))
            if value != old:
                new[k] = value
                return new


class RandomOperation(_PerStep):
    """One operator per step becomes a different one of + - / * ^."""

    name, kind, none_reason = "RandomOperation", "random_operation", "no_operator"

    def items(self, text):
        return operators(text)

    def edit(self, items, rng):
        new = [i.text for i in items]
        k = rng.randrange(len(new))
        choices = [op for op in OPERATORS if op != canonical(new[k])]
        new[k] = choices[rng.randrange(len(choices))]
        return new
