"""Windows of a text that sound like a lexicon word (社宝 → 社保): voice input's homophones.

Each CJK character has one loose toneless syllable (zh/z, ing/in merged; the classifier's
derived tables). A window matches a lexicon word when its syllables equal the word's and it
shares a character with it. To look for them in C rather than character by character, every
syllable is given a code character, a text is translated to its codes in one `str.translate`,
and only the positions whose first two codes begin some word's key are looked at further.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping, Sequence

# Codes start here; everything that has no syllable becomes _NONE, which is no code. Characters
# past the end of the table are left as they are by `str.translate`: the table reaches past
# every code, so those can never be taken for one.
_FIRST_CODE = 0x100
_NONE = "\x00"


class Homophones:
    """The lexicon words that a text's windows sound like, in text order."""

    def __init__(
        self,
        chars: Mapping[str, str],
        index: Mapping[tuple[str, str], Sequence[tuple[str, Sequence[str]]]],
    ) -> None:
        syllables = set(chars.values())
        for entries in index.values():
            for _, key in entries:
                syllables.update(key)
        code = {s: chr(_FIRST_CODE + i) for i, s in enumerate(sorted(syllables))}
        size = max(0x4E00, _FIRST_CODE + len(code), *(ord(c) + 1 for c in chars))
        table = [_NONE] * size
        for ch, syllable in chars.items():
            table[ord(ch)] = code[syllable]
        self._table = table
        # a word's syllables as codes -> the words (in the order of the index)
        self._words: dict[str, list[str]] = {}
        lengths: dict[str, set[int]] = {}
        for entries in index.values():
            for word, key in entries:
                coded = "".join(code[s] for s in key)
                self._words.setdefault(coded, []).append(word)
                lengths.setdefault(coded[:2], set()).add(len(key))
        # the first two codes of some word's key -> the lengths of those keys, shortest first
        self._lengths = {pair: tuple(sorted(ks)) for pair, ks in lengths.items()}

    def __bool__(self) -> bool:
        return bool(self._lengths)

    def find(self, text: str, covered: bytearray) -> Iterator[tuple[str, str]]:
        """(surface, word) for each window outside `covered` that sounds like a lexicon word
        and shares a character with it, by position, then length, then the index's order."""
        codes = text.translate(self._table)
        lengths = self._lengths
        found = lengths.keys() & set(map(operator.add, codes, codes[1:]))
        if not found:
            return
        starts = []
        for pair in found:
            i = codes.find(pair)
            while i >= 0:
                starts.append(i)
                i = codes.find(pair, i + 1)
        starts.sort()
        n = len(text)
        words = self._words
        for i in starts:
            # most candidates lie inside an exact match
            if covered[i] or covered[i + 1]:
                continue
            for k in lengths[codes[i : i + 2]]:
                if i + k > n or any(covered[i : i + k]):
                    continue
                surface = text[i : i + k]
                for word in words.get(codes[i : i + k], ()):
                    if any(a == b for a, b in zip(surface, word, strict=True)):
                        yield surface, word
