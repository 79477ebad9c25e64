"""Full-text index: tokenizer + token -> posting lists.

With a text index on a key, the text checks of that key are decided by tokens, as in Qdrant:

- ``text``: every token of the query is among the tokens of the point's strings (all strings at
  the key taken together); a query with no token matches nothing;
- ``text_any``: at least one query token is among them;
- ``phrase``: the query's tokens appear consecutively within one string; only when the index was
  created with ``phrase_matching: true`` (otherwise phrase matches nothing, as documented).

Tokenizers: ``word`` splits on every non-alphanumeric character, ``whitespace`` on whitespace,
``prefix`` indexes every prefix of every word (``min_token_len``.. ``max_token_len`` characters)
and matches query words as prefixes; ``multilingual`` is approximated by the word tokenizer with
accents removed and tokens without a letter dropped (Qdrant uses charabia; scripts without word
separators, such as Chinese or Japanese, are not segmented here). Then, per token: ASCII folding
(if asked), lowercasing (default on), custom stopwords, and the length limits.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import numpy as np

from qcluster.shards.filters.conditions import MatchText, ValueCheck
from qcluster.shards.payload_index.base import SKIP, FieldIndex, Mask
from qcluster.shards.payload_index.postings import Postings
from qcluster.shards.payload_index.schema import FieldSchema

_WORD = re.compile(r"[^\W_]+")
_SPECIAL_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE",
                               "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH"})  # fmt: skip


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class TextAnalyzer:
    """Turns strings into tokens the way the index's params say."""

    def __init__(self, schema: FieldSchema):
        self.tokenizer = schema.tokenizer
        self.lowercase = schema.lowercase
        self.fold = schema.flag("ascii_folding", False) or self.tokenizer == "multilingual"
        self.min_len = schema.min_token_len
        self.max_len = schema.max_token_len
        self.phrase_matching = schema.flag("phrase_matching", False)
        from qcluster.shards.payload_index.stopwords import LANGUAGES

        raw = schema.params.get("stopwords") or {}
        if isinstance(raw, str):
            raw = {"languages": [raw]}
        words = list(raw.get("custom") or [])
        for lang in raw.get("languages") or []:
            words.extend(LANGUAGES.get(lang, ()))
        self.stopwords = {w.lower() if self.lowercase else w for w in words}

    def _words(self, text: str) -> list[str]:
        if self.tokenizer == "whitespace":
            return text.split()
        words = _WORD.findall(text)
        if self.tokenizer == "multilingual":
            words = [w for w in words if any(c.isalpha() for c in w)]
        return words

    def _normalize(self, word: str) -> str:
        if self.fold:
            word = strip_accents(word)
        if self.lowercase:
            word = word.lower()
        return word

    def _process(self, word: str, check_max: bool) -> str | None:
        token = self._normalize(word)
        if not token or token in self.stopwords:
            return None
        n = len(token)
        if self.min_len is not None and n < self.min_len:
            return None
        if check_max and self.max_len is not None and n > self.max_len:
            return None
        return token

    def doc_tokens(self, text: str) -> list[str]:
        """Tokens of a stored string, in order (with repeats)."""
        out: list[str] = []
        if self.tokenizer != "prefix":
            for w in self._words(text):
                t = self._process(w, check_max=True)
                if t is not None:
                    out.append(t)
            return out
        lo = max(1, self.min_len or 1)
        for w in self._words(text):
            t = self._process(w, check_max=False)
            if t is None:
                continue
            hi = len(t) if self.max_len is None else self.max_len
            for n in range(lo, hi + 1):
                if n < len(t):
                    out.append(t[:n])
                else:
                    out.append(t)
                    break
        return out

    def query_tokens(self, text: str) -> set[str]:
        """Distinct tokens of a ``text`` / ``text_any`` query."""
        if self.tokenizer != "prefix":
            return set(self.doc_tokens(text))
        out: set[str] = set()
        for w in self._words(text):
            t = self._normalize(w)
            if not t or (self.min_len is not None and len(t) < self.min_len):
                continue
            out.add(t if self.max_len is None else t[: self.max_len])
        return out

    def text_match(self, check: MatchText, strings: list[str]) -> bool:
        """The verdict on one point (or nested element) whose strings at the key are ``strings``."""
        if check.mode == "phrase":
            if not self.phrase_matching:
                return False
            phrase = self.doc_tokens(check.text)
            return bool(phrase) and any(has_phrase(self.doc_tokens(s), phrase) for s in strings)
        query = self.query_tokens(check.text)
        if not query:
            return False
        doc: set[str] = set()
        for s in strings:
            doc.update(self.doc_tokens(s))
        return query <= doc if check.mode == "text" else bool(query & doc)


def has_phrase(doc: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(doc[i : i + n] == phrase for i in range(len(doc) - n + 1))


class TextIndex(FieldIndex):
    kind = "text"

    def __init__(self, key: str, schema: FieldSchema):
        super().__init__(key, schema)
        self.analyzer = TextAnalyzer(schema)
        self.postings = Postings()
        self._docs: dict[int, list[list[str]]] = {}  # per string token lists, for phrases

    def _convert(self, value: Any) -> Any:
        return value if isinstance(value, str) else SKIP

    def _insert(self, offset: int, own: tuple[Any, ...]) -> None:
        docs = [self.analyzer.doc_tokens(s) for s in own]
        for t in {t for d in docs for t in d}:
            self.postings.add(t, offset)
        if self.analyzer.phrase_matching:
            self._docs[offset] = docs

    def _delete(self, offset: int, own: tuple[Any, ...]) -> None:
        for t in {t for s in own for t in self.analyzer.doc_tokens(s)}:
            self.postings.discard(t, offset)
        self._docs.pop(offset, None)

    def text_match(self, check: MatchText, strings: list[str]) -> bool:
        return self.analyzer.text_match(check, strings)

    def _all_of(self, tokens: set[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
        arrays = sorted((self.postings.array(t) for t in tokens), key=len)
        acc = arrays[0]
        for arr in arrays[1:]:
            if not acc.size:
                break
            acc = np.intersect1d(acc, arr, assume_unique=True)
        return acc

    def _own_mask(self, check: ValueCheck, size: int) -> Mask | None:
        if not isinstance(check, MatchText):
            return None
        out = np.zeros(size, dtype=np.bool_)
        a = self.analyzer
        if check.mode == "phrase":
            phrase = a.doc_tokens(check.text) if a.phrase_matching else []
            if not phrase:
                return out
            for off in self._all_of(set(phrase)).tolist():
                if off < size and any(has_phrase(d, phrase) for d in self._docs.get(off, ())):
                    out[off] = True
            return out
        query = a.query_tokens(check.text)
        if not query:
            return out
        if check.mode == "text_any":
            return self.postings.mask(query, size)
        hit = self._all_of(query)
        out[hit[hit < size]] = True
        return out
