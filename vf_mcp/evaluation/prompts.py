"""Every prompt text evaluation uses, in one place: the judge's, the simulated user's, the MCP one.

Replies are asked for as one JSON object; `judge.parse_verdict` and `judge.parse_user_reply` also
cope with fenced, chatty or plain-word answers, since many OpenAI-compatible models drift.
"""

from __future__ import annotations

from collections.abc import Mapping

JUDGE_SYSTEM = """\
You are a strict, fair evaluator of conversations between a user and a conversational agent.
You judge only what the transcript shows. Answer with one JSON object and nothing else:
{"verdict": "pass" or "fail", "score": a number from 0 to 1, "reasoning": "one or two sentences"}"""


def criterion_prompt(conversation: str, criterion: str, *, focus_turn: int | None) -> str:
    focus = (
        f"Judge the agent's answer in turn {focus_turn}, using the earlier turns as context."
        if focus_turn is not None
        else "Judge the conversation as a whole."
    )
    return (
        f"Transcript:\n<<<\n{conversation}\n>>>\n\n{focus}\n"
        f"Criterion: {criterion}\n\n"
        "Does the agent meet the criterion? score is how fully it does (1 = fully). "
        'Reply with the JSON object {"verdict", "score", "reasoning"}.'
    )


def goal_prompt(conversation: str, goal: str) -> str:
    return (
        f"Transcript:\n<<<\n{conversation}\n>>>\n\n"
        f"The user's goal: {goal}\n\n"
        "Has the goal been achieved in this conversation? verdict pass means achieved. "
        'Reply with the JSON object {"verdict", "score", "reasoning"}.'
    )


def similarity_prompt(message: str, values: list[str]) -> str:
    # voiceflow-cli's `similarity` validation: the average similarity of the message to every
    # reference value, from 0 to 1, compared with similarityThreshold by the caller.
    refs = "\n".join(f"- {v}" for v in values)
    return (
        f"Message from the agent:\n<<<\n{message}\n>>>\n\nReference texts:\n{refs}\n\n"
        "Rate how similar in meaning the message is to each reference text, from 0 (unrelated) "
        "to 1 (same meaning), and give the average as score. verdict is pass when score >= 0.5. "
        'Reply with the JSON object {"verdict", "score", "reasoning"}.'
    )


def grounded_prompt(conversation: str, turn: int, answer: str, chunks: list[str]) -> str:
    # Faithfulness as DeepEval grades it per turn: every claim of the answer must be supported by
    # the retrieved context (https://deepeval.com/docs/metrics-turn-faithfulness).
    context = "\n".join(f"[{i}] {chunk}" for i, chunk in enumerate(chunks, start=1))
    return (
        f"Transcript:\n<<<\n{conversation}\n>>>\n\n"
        f"Knowledge the agent retrieved for turn {turn}:\n<<<\n{context}\n>>>\n\n"
        f"The agent's answer in turn {turn}:\n<<<\n{answer}\n>>>\n\n"
        "Is every factual claim of that answer supported by the retrieved knowledge? Claims the "
        "knowledge does not state, or contradicts, make it fail. score is the share of claims "
        'that are supported. Reply with the JSON object {"verdict", "score", "reasoning"}.'
    )


USER_DONE_TOKEN = "###GOAL_MET###"


def simulated_user_system(persona: str, goal: str, facts: Mapping[str, str]) -> str:
    known = "".join(f"\n- {name}: {value}" for name, value in facts.items())
    return (
        "You play the USER in a conversation with a customer-service agent, to test the agent.\n"
        f"Your persona: {persona or 'an ordinary user'}\n"
        f"Your goal: {goal}\n"
        + (f"Facts you may give when asked:{known}\n" if known else "")
        + "Rules: write only what the user would type next, short and natural; stay in "
        "character; never mention that this is a test. When the agent offers buttons you may "
        "answer with a button's exact label to press it. When your goal has been met (or cannot "
        f"be met), reply with {USER_DONE_TOKEN} instead of a message.\n"
        'Answer with one JSON object: {"message": "what you type", "done": true or false}.'
    )


def simulated_user_turn(conversation: str, turn: int, max_turns: int) -> str:
    return (
        f"Conversation so far:\n<<<\n{conversation}\n>>>\n\n"
        f"This is your message {turn} of at most {max_turns}. What do you type next?"
    )


EVALUATE_AGENT_PROMPT = """\
You are evaluating a Voiceflow agent through the vf-mcp tools. Act as its user{persona_clause}.

Goal to test: {goal}

1. Start with interact(launch=true) and keep the returned user_id for every later call.
2. Talk to the agent as the user would, one interact call per turn: answer buttons with
   choice="<label>", free questions with message="...". Use at most {max_turns} turns.
3. Stop when the goal is met, the agent ends or hands off, or you run out of turns.
4. Read the transcript (resource voiceflow://transcripts/<user_id>) and grade the agent on:
{criteria}
5. Report a verdict per criterion (pass or fail, with the turn numbers that show it), then an
   overall verdict, then anything that should be fixed in the agent. Quote the agent exactly.
"""


def evaluate_agent_prompt(
    goal: str, *, persona: str = "", criteria: list[str] | None = None, max_turns: int = 10
) -> str:
    """The text of the `evaluate_agent` MCP prompt."""
    wanted = criteria or [
        "It reaches the goal without dead ends or repeated questions",
        "Its answers are correct, relevant and consistent with each other",
        "It is clear and polite, and hands off to a person when it should",
    ]
    return EVALUATE_AGENT_PROMPT.format(
        persona_clause=f", with this persona: {persona}" if persona else "",
        goal=goal,
        max_turns=max_turns,
        criteria="\n".join(f"   - {c}" for c in wanted),
    )
