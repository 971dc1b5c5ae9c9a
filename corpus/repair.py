"""Ask a model for JSON and validate it, sending invalid replies back for repair (any backend).

A reply that holds no JSON object, or whose object the caller's `parse` rejects (ValueError, which
includes pydantic's ValidationError), is returned to the model as its own assistant turn followed
by the error and a request to correct it; after `attempts` replies the last error is raised.
"""
from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

Complete = Callable[[list[dict[str, str]]], Awaitable[tuple[str, int, int]]]   # messages -> text, tokens in, out
REPAIR = ("Your reply could not be used: {error}\nAnswer again with the corrected JSON object only, "
          "in the same shape.")
MAX_ERROR_CHARS = 1000   # ours: enough of a validation error to fix the reply, short enough to resend
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(text: str) -> object:
    """The JSON object in a model reply (bare, fenced, or the outermost {...}); ValueError if none."""
    for candidate in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start != -1 and end > start:
            try:
                return json.loads(candidate[start:end + 1])
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON object in the reply")


class ReplyError(ValueError):
    """Every reply for one request was unusable: the last error and the last reply text."""

    def __init__(self, error: str, reply: str) -> None:
        """Keep the last error and reply for the rejects file."""
        super().__init__(f"no usable reply after repairs: {error}")
        self.error, self.reply = error, reply


async def ask_validated(complete: Complete, prompt: str, parse: Callable[[object], object], attempts: int):
    """(value, repairs, (tokens in, tokens out)) for `prompt`, or ReplyError after `attempts` replies."""
    messages = [{"role": "user", "content": prompt}]
    tokens_in = tokens_out = 0
    error, text = "", ""
    for attempt in range(attempts):
        text, n_in, n_out = await complete(messages)
        tokens_in, tokens_out = tokens_in + n_in, tokens_out + n_out
        try:
            return parse(extract_json(text)), attempt, (tokens_in, tokens_out)
        except ValueError as exc:
            error = str(exc)[:MAX_ERROR_CHARS]
            messages = messages[:1] + [{"role": "assistant", "content": text or "(empty)"},
                                       {"role": "user", "content": REPAIR.format(error=error)}]
    raise ReplyError(error, text)
