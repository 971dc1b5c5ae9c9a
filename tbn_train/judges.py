"""Which Judge scores the therapist: a name or a Python entry point, as TRL's ``reward_funcs=``
accepts any callable.

* ``rubric`` — the offline rubric judge (``tbn_env.rubric_judge``), deterministic;
* ``anthropic`` — Claude (``corpus.anthropic_env.AnthropicJudge``; key from ANTHROPIC_API_KEY, a
  proxy or local server from ANTHROPIC_BASE_URL);
* ``module:factory`` — ``factory(persona)`` from an importable module, returning any object that
  implements the ``tbn_env.protocols.Judge`` protocol (``deterministic`` and ``score(context)``).

``model`` (the frozen adapter on the shared MLX model) is built by self-play itself, which owns the model.
"""
from __future__ import annotations

import importlib

from tbn_env.protocols import Judge, Persona

NAMED = ("rubric", "anthropic", "model")


def check_judge_spec(spec: str) -> str:
    """Validator: a known name or ``module:factory`` (checked before a run starts)."""
    if spec in NAMED:
        return spec
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"judge {spec!r}: use one of {', '.join(NAMED)} or module:factory")
    return spec


def resolve_judge(spec: str, persona: Persona = "clinical") -> Judge:
    """Build the judge named by ``spec`` under ``persona``; raises ValueError naming what is wrong."""
    if spec == "rubric":
        from tbn_env.rubric_judge import RubricJudge

        return RubricJudge(persona)
    if spec == "anthropic":
        from corpus.anthropic_env import AnthropicJudge

        return AnthropicJudge(persona)
    if spec == "model":
        raise ValueError("judge 'model' runs on the trainer's own model; self-play builds it")
    module_name, _, attr = check_judge_spec(spec).partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"judge {spec!r}: cannot import {attr} from {module_name} ({exc})") from None
    judge = factory(persona)
    if not isinstance(judge, Judge):  # a bad --judge value: ValueError, so the CLI exits 2 with one line
        raise ValueError(  # noqa: TRY004
            f"judge {spec!r} returned a {type(judge).__name__}, which does not implement the Judge "
            "protocol (a 'deterministic' attribute and score(context) -> JudgeResult)")
    return judge
