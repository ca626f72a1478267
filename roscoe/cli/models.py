"""``roscoe models``: each model slot of a preset with its source, size and hash."""
from __future__ import annotations

import json

from .. import registry
from .common import EXIT_OK, text_table


def register(sub) -> None:
    p = sub.add_parser("models", help="list each model slot of a preset: model, source, size, hash")
    p.add_argument("--preset", default="lite")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run, extra="lite")


def run(args) -> int:
    from ..models import ModelSet, ModelUnavailable

    ms = ModelSet(args.preset)
    rows = []
    for slot in registry.SLOTS:
        try:
            d = ms.describe(slot)
        except ModelUnavailable as err:
            d = {"slot": slot, "model": ms.preset.slots[slot].model, "source": f"not available: {err}"}
        rows.append({k: d.get(k, "") for k in ("slot", "model", "source", "size_mb", "hash")})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"preset {ms.preset.name}: {ms.preset.description}")
        print(text_table(rows))
    return EXIT_OK
