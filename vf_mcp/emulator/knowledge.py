"""A tiny knowledge base: pick the entry that shares the most words with the question."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from .agent import KnowledgeEntry

_STOPWORDS = frozenset(
    (  # noqa: SIM905 - a word list reads better as prose than as 47 quoted items
        "a an and are as at be can could do does for from have how i if in is it its me my of on "
        "or our please tell that the there this to us was what when where which who why will with "
        "would you your"
    ).split()
)


def _words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    # Crude plural folding so "returns" meets "return"; applied to both sides alike.
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOPWORDS}


def best_entry(question: str, entries: Sequence[KnowledgeEntry]) -> KnowledgeEntry | None:
    """Highest word overlap with the entry's title, question and keywords; ties go to the first."""
    asked = _words(question)
    best: KnowledgeEntry | None = None
    best_score = 0
    for entry in entries:
        known = _words(" ".join([entry.title, entry.question, *entry.keywords]))
        score = len(asked & known)
        if score > best_score:
            best, best_score = entry, score
    return best


def match_score(question: str, entry: KnowledgeEntry) -> float:
    """The share of the question's words the entry knows: the chunk's retrieval score."""
    asked = _words(question)
    known = _words(" ".join([entry.title, entry.question, *entry.keywords]))
    return round(len(asked & known) / len(asked), 2) if asked else 0.0


def knowledge_trace_payload(question: str, entry: KnowledgeEntry, answer: str) -> dict[str, Any]:
    """A ``knowledgeBase`` payload: the chunk retrieved (documented fields: score, documentID,
    documentData; ``content`` as the knowledge-base query API names a chunk's text) and the
    query that used it."""
    document_id = hashlib.sha1(f"kb:{entry.title}".encode()).hexdigest()[:24]
    chunk = {
        "score": match_score(question, entry),
        "documentID": document_id,
        "documentData": {"type": "text", "name": entry.title},
        "content": entry.answer,
    }
    query = {"messages": [{"role": "user", "content": question}], "output": answer}
    return {"chunks": [chunk], "query": query}


def chunk_text(text: str, words_per_chunk: int, *, chars: int | None = None) -> list[str]:
    """Split into chunks of whole words (or of `chars` characters) whose concatenation is
    exactly ``text``."""
    if chars is not None:
        return [text[i : i + chars] for i in range(0, len(text), chars)] or [text]
    pieces = re.split(r"(?<=\s)(?=\S)", text)
    return [
        "".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)
    ] or [text]
