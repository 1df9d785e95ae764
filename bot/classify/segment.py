"""jieba's accurate mode without HMM (`Tokenizer.cut(text, HMM=False)`), token for token, faster.

jieba builds a DAG of every dictionary word starting at each character (`get_DAG`), then finds
the most probable path backwards (`calc`), computing `log(freq) - log(total)` for every edge of
every text. Here both happen in one backward pass, and what the dictionary says of each
fragment met (a word's log probability, a mere prefix, or in no word) is kept in a small cache
(it cannot change while the dictionary does not), so a text costs a few look-ups in that cache
per character. The result is the same list of tokens: the same edges, the same floats added in
the same order, ties broken the same way (the longer word wins).
"""

from __future__ import annotations

import math
import re

import jieba

# jieba's own splitting of a text into blocks it segments and runs it passes through
_HAN = re.compile("([\u4e00-\u9fd5a-zA-Z0-9+#&\\._%\\-]+)")
_SKIP = re.compile("(\r\n|\\s)")
# jieba glues single Latin letters and digits that the route leaves alone into one token
_ENG = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


# What the cache holds for a fragment besides a word's log probability: a prefix of some word
# that is no word itself, or no prefix at all (the scan from that character stops). These
# exact objects are stored and compared by identity; a word's log probability is finite.
_PREFIX = float("-inf")
_STOP = float("inf")
# Fragments that are in no word are cached too (each text's scans end on some); past this size
# the cache starts again, so texts nobody repeats cannot make it grow without end.
CACHE_SIZE = 100_000


class Segmenter:
    """Cuts texts as `tokenizer.cut(text, HMM=False)` does, over the tokenizer's dictionary.

    A change of the dictionary is seen by its total (`add_word`, `load_userdict`,
    `suggest_freq(..., tune=True)`); jieba's `del_word` leaves the total as it was, so call
    `clear()` after it. The classifier never changes its dictionary after it is built."""

    def __init__(self, tokenizer: jieba.Tokenizer) -> None:
        tokenizer.check_initialized()
        self._tokenizer = tokenizer
        self._total = -1
        self._reset()

    def _reset(self) -> None:
        """Forget the log probabilities: the dictionary changed (or this is the start)."""
        tok = self._tokenizer
        self._freq: dict[str, int] = tok.FREQ
        self._total = tok.total
        self._logtotal = math.log(tok.total)
        self._unknown = 0.0 - self._logtotal  # log(1) - log(total): an unknown character
        # fragment -> log(freq) - log(total), _PREFIX or _STOP (filled as met)
        self._logp: dict[str, float] = {}

    def clear(self) -> None:
        """Empty the cache (after `del_word`; benchmarks measure what a fresh start costs)."""
        self._logp.clear()

    def _learn(self, frag: str) -> float:
        """What the dictionary says of a fragment, cached."""
        f = self._freq.get(frag)
        p = _STOP if f is None else math.log(f) - self._logtotal if f else _PREFIX
        if len(self._logp) >= CACHE_SIZE:
            self._logp.clear()
        self._logp[frag] = p
        return p

    def cut(self, text: str) -> list[str]:
        """The tokens of a text, exactly as jieba's `cut(text, HMM=False)` yields them."""
        if self._tokenizer.total != self._total:
            self._reset()
        out: list[str] = []
        for i, block in enumerate(_HAN.split(text)):
            if not block:
                continue
            if i % 2:  # a captured run of CJK, Latin, digits and +#&._%-
                self._block(block, out)
            else:
                for j, piece in enumerate(_SKIP.split(block)):
                    if j % 2:
                        out.append(piece)  # whitespace (or \r\n) as one token
                    else:
                        out.extend(piece)  # anything else character by character
        return out

    def _block(self, sentence: str, out: list[str]) -> None:
        """Segment one run: the best route backwards, then jieba's gluing of Latin letters."""
        n = len(sentence)
        known = self._logp.get
        learn = self._learn
        unknown = self._unknown
        score = [0.0] * (n + 1)
        end = list(range(n))
        # the characters themselves in one pass in C; the longer fragments one by one
        singles = list(map(known, sentence))
        for k in range(n - 1, -1, -1):
            p = singles[k]
            if p is None:
                p = learn(sentence[k])
            if p is _STOP:  # in no word: the character alone, as an unknown one
                score[k] = unknown + score[k + 1]
                continue
            best = None if p is _PREFIX else p + score[k + 1]
            i = k + 1
            while i < n:
                p = known(sentence[k : i + 1])
                if p is None:
                    p = learn(sentence[k : i + 1])
                if p is _STOP:
                    break
                if p is not _PREFIX:
                    # jieba: max((p + score[x + 1], x)): on a tie the longer word wins
                    s = p + score[i + 1]
                    if best is None or s >= best:
                        best = s
                        end[k] = i
                i += 1
            score[k] = unknown + score[k + 1] if best is None else best
        x = 0
        buf = ""
        while x < n:
            y = end[x] + 1
            word = sentence[x:y]
            if word in _ENG:
                buf += word
            else:
                if buf:
                    out.append(buf)
                    buf = ""
                out.append(word)
            x = y
        if buf:
            out.append(buf)
