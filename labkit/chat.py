"""Chat turns: messages in (rendered by the pair's chat template), segment labels out.

Gemma 4 speaks in turns and thinks on request (Google, "Gemma 4 prompt formatting"):

    <bos><|turn>system\\n<|think|><turn|>\\n          only with thinking on (or a system message)
    <|turn>user\\nWhat is 478 + 65?<turn|>\\n
    <|turn>model\\n<|channel>thought\\n…working…<channel|>The answer is 543.<turn|>

`render` turns a list of `{"role", "content"}` messages into the ids of that prompt (the
generation prompt `<|turn>model\\n` at its end); `segments` says of every token of a sequence
what it is part of:

- "thought":       inside `<|channel>thought\\n … <channel|>`, the model's working,
- "tool_call":     inside `<|tool_call> … <tool_call|>`,
- "tool_response": inside `<|tool_response> … <tool_response|>`,
- "template":      what the chat format itself adds: every special token (`<|turn>`, `<turn|>`,
                   `<|channel>`, `<channel|>`, `<|"|>`, `<eos>`, …) and the header after `<|turn>`
                   or `<|channel>` up to its newline ("model\\n", "thought\\n"), and whatever
                   stands between one turn's `<turn|>` and the next `<|turn>`,
- "answer":        everything else in a turn: the reply the user reads.

The labeller reads tokens only (no roles, no text outside one token), so it labels a saved trace
as well as a live one; `10_chat_and_thinking` introduces it and asks you to write it. Labels
depend on what came before (a prompt may end inside a thought channel), so label the prompt and
the new tokens together and keep the tail (`Trace.segments` does).

Left out: tool declarations in the system turn (`<|tool>`), images and audio in messages (their
soft tokens read as "answer"), roles (a user's words in the prompt read as "answer" too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit.errors import BadInputError

SEGMENTS = ("thought", "answer", "tool_call", "tool_response", "template")

# control token -> the segment that starts after it
OPENS = {"<|turn>": "answer", "<|channel>": "thought", "<|tool_call>": "tool_call",
         "<|tool_response>": "tool_response"}
CLOSES = {"<turn|>": "template", "<channel|>": "answer", "<tool_call|>": "answer",
          "<tool_response|>": "answer"}
HEADED = ("<|turn>", "<|channel>")  # followed by a header up to its newline: "model\n", "thought\n"


def segments(ids: Sequence[int], tokenizer: Any) -> tuple[str, ...]:
    """One label of `SEGMENTS` per token of `ids`, read left to right from the control tokens."""
    special = set(tokenizer.all_special_ids)
    labels, inside, header = [], "answer", False
    for i in ids:
        piece = tokenizer.decode([i])
        if piece in OPENS or piece in CLOSES or i in special:
            labels.append("template")
            inside = OPENS.get(piece, CLOSES.get(piece, inside))
            header = piece in HEADED
        elif header:  # the header runs up to and including its newline
            labels.append("template")
            header = "\n" not in piece
        else:
            labels.append(inside)
    return tuple(labels)


def is_conversation(prompt: Any) -> bool:
    """True for a list of messages (dicts), the prompt `render` takes."""
    return isinstance(prompt, (list, tuple)) and bool(prompt) and all(isinstance(m, Mapping) for m in prompt)


def check_messages(messages: Any) -> None:
    """A BadInputError saying what is wrong with `messages`, or nothing."""
    if isinstance(messages, (list, tuple)) and messages and all(is_conversation(m) for m in messages):
        raise BadInputError(
            f"got {len(messages)} conversations; speculative decoding here runs one prompt at a time "
            "(transformers' assisted generation supports batch size 1 only). Loop over them.")
    if not is_conversation(messages):
        raise BadInputError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts, "
                            "e.g. [{'role': 'user', 'content': 'What is 2 + 3?'}]")
    for n, m in enumerate(messages):
        if not isinstance(m.get("role"), str) or "content" not in m:
            raise BadInputError(f"message {n} is {dict(m)!r}: each message needs a 'role' "
                                "('system', 'user' or 'assistant') and a 'content'")
    if not any(m["role"] == "user" for m in messages):
        raise BadInputError("the messages hold no user turn: add {'role': 'user', 'content': ...}")


def render(tokenizer: Any, messages: Sequence[Mapping[str, Any]], thinking: bool | None = None) -> list[int]:
    """The prompt ids of `messages` in the tokenizer's chat template, ending with the generation
    prompt (`<|turn>model\\n` for Gemma 4). thinking: True/False sets the template's
    `enable_thinking` (`<|think|>` in the system turn); None leaves the template's default."""
    check_messages(messages)
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise BadInputError(
            "this pair's tokenizer has no chat template, so messages cannot be rendered: a base model "
            "continues text. Pass a string prompt, or load a pair that speaks in turns "
            "(labkit.load_pair('pocket-chat'), or an instruction-tuned '-it' Gemma 4 target).")
    if thinking and "enable_thinking" not in str(template):
        raise BadInputError(
            "thinking=True: this pair's chat template has no thinking switch (enable_thinking), so it "
            "would be ignored. Leave thinking out, or load a pair that thinks on request "
            "(labkit.load_pair('pocket-chat'), or a Gemma 4 '-it' target).")
    switch = {} if thinking is None else {"enable_thinking": bool(thinking)}
    ids = tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, **switch)
    return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)


def user_text(prompt: Any) -> str:
    """The text a widget's box shows for a prompt: the last user turn of messages, or the text itself."""
    if not is_conversation(prompt):
        return prompt
    return next((str(m["content"]) for m in reversed(prompt) if m.get("role") == "user"), "")


def with_user_text(prompt: Any, text: str) -> Any:
    """`prompt` with its last user turn's words replaced by `text` (a copy), or `text` itself: what a
    widget runs after the learner edited its box (the earlier turns stay as given)."""
    if not is_conversation(prompt):
        return text
    last = max((n for n, m in enumerate(prompt) if m.get("role") == "user"), default=len(prompt))
    return [dict(m, content=text) if n == last else dict(m) for n, m in enumerate(prompt)]


def chat_keywords(prompt: Any, thinking: bool | None) -> dict[str, Any]:
    """The `run` keywords of a widget's runner: messages stop at the end of the model's turn (and take
    `thinking`); text runs to `max_new_tokens`, so every path and method emits as many tokens."""
    if not is_conversation(prompt):
        return {"stop_at_eos": False}
    return {"stop_at_eos": True, **({} if thinking is None else {"thinking": thinking})}


# ---------------------------------------------------------------- held-out questions (chapter 10)


def load_questions(limit: int | None = None, tasks: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """data/prompts/chat.jsonl: conversations whose last question is phrased as training never saw,
    each {"messages", "task", "value"} (scripts/make_chat_prompts.py wrote them)."""
    import json

    from labkit.paths import PROMPTS_DIR

    rows = [json.loads(line) for line in (PROMPTS_DIR / "chat.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if tasks is None or r["task"] in tasks]
    return rows[:limit]


def reply_parts(text: str) -> tuple[str | None, str]:
    """(thought, answer) of a model turn's decoded text: the thought is None when there was no channel."""
    text = text.split("<turn|>")[0].replace("<eos>", "")
    if "<|channel>" not in text:
        return None, text.strip()
    thought, _, answer = text.split("<|channel>", 1)[1].partition("<channel|>")
    return thought.removeprefix("thought\n"), answer.strip()


def is_right(question: Mapping[str, Any], answer: str) -> bool:
    """Does `answer` (the visible reply) state the question's checkable value?"""
    import re

    value = question["value"]
    if question["task"] == "greet":
        return answer.lower().startswith("hello")
    if isinstance(value, list):
        found = re.search(r"sorted list is ([\d, ]+)", answer)
        return bool(found) and [int(x) for x in re.findall(r"\d+", found.group(1))] == value
    found = re.search(r"answer is (-?\d+)", answer)
    return bool(found) and int(found.group(1)) == value
