"""Grounding: the knowledge-base chunks a turn retrieved, and the judge's `grounded` check.

A `knowledgeBase` trace lists the chunks the runtime retrieved before answering
(`{chunks: [{score, documentID, documentData}], query?}`: the trace as
https://github.com/voiceflow/cli/blob/main/.speakeasy/out.openapi.yaml describes it). A chunk's
text is its `content`, the field the knowledge-base query API gives each chunk
(https://docs.voiceflow.com/api-reference/public-docs/query), else a string `content` or `text`
in `documentData`; the older FAQ form (`faqQuestion`, `faqAnswer`) counts as one chunk. The
transcript keeps them per turn (`retrieval`), DeepEval's export writes them as
`retrieval_context`, and `grounded` asks the judge whether the answer rests on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vf_mcp.domain.transcript import CheckResult, RetrievedChunk, TranscriptTurn
from vf_mcp.evaluation.checkmodels import GroundedCheck, describe_check
from vf_mcp.evaluation.judge import ChatModel, grade_grounded
from vf_mcp.voiceflow.traces import BaseTrace, KnowledgeBaseTrace


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _chunk(raw: Any) -> RetrievedChunk | None:
    if not isinstance(raw, dict):
        return None
    data = raw.get("documentData")
    data = data if isinstance(data, dict) else {}
    text = _text(raw.get("content")) or _text(data.get("content")) or _text(data.get("text"))
    if text is None:
        return None
    score = raw.get("score")
    source = raw.get("source")
    name = _text(data.get("name")) or (
        _text(source.get("name")) if isinstance(source, dict) else None
    )
    return RetrievedChunk(
        text=text,
        score=float(score)
        if isinstance(score, int | float) and not isinstance(score, bool)
        else None,
        document_id=_text(raw.get("documentID")),
        source=name,
    )


def chunks_of(traces: Sequence[BaseTrace]) -> list[RetrievedChunk] | None:
    """Every chunk of the turn's `knowledgeBase` traces, in order; None when there were none."""
    found: list[RetrievedChunk] = []
    for trace in traces:
        if not isinstance(trace, KnowledgeBaseTrace):
            continue
        payload = trace.payload
        for raw in payload.chunks or []:
            if (chunk := _chunk(raw)) is not None:
                found.append(chunk)
        answer = _text(payload.faq_answer)
        if answer is not None:
            found.append(RetrievedChunk(text=answer, source=_text(payload.faq_question)))
    return found or None


def _result(check: GroundedCheck, outcome: Any, evidence: str, **extra: Any) -> CheckResult:
    return CheckResult(
        id=check.id,
        kind="grounded",
        label=describe_check(check),
        expected=[c.text for c in extra.pop("chunks", [])] or None,
        outcome=outcome,
        evidence=evidence,
        **extra,
    )


async def grounded(
    check: GroundedCheck, turn: TranscriptTurn, conversation: str, judge: ChatModel | None
) -> CheckResult:
    """Whether the turn's answer rests on what it retrieved, as the judge reads it."""
    chunks = turn.retrieval or []
    if not chunks:
        return _result(
            check, "failed", "no knowledge-base chunks came back in this turn (no knowledgeBase "
            "trace with chunks), so its answer rests on nothing retrieved",
        )  # fmt: skip
    if judge is None:
        why = "no judge configured (set VF_MCP_JUDGE_URL and VF_MCP_JUDGE_MODEL)"
        return _result(check, "to_grade", why, chunks=chunks)
    answer = turn.agent.text or "(no message)"
    verdict = await grade_grounded(
        judge, conversation, turn.index, answer, [c.text for c in chunks]
    )
    passed = verdict.verdict == "pass"
    if passed and check.threshold is not None:
        passed = verdict.score is not None and verdict.score >= check.threshold
    outcome = "passed" if passed else "failed"
    return _result(check, outcome, verdict.reasoning, chunks=chunks, verdict=verdict)
