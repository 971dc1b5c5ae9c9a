"""The RRA recap bridge R_n (§8.2.1) and the quality gate on both gradient pathways (§8.2.1 fn. 15).

The recap is written by the model being trained, adapters active, continuing from the compressed
cache after an opening marker: it is generated *from the compressed history*, so its quality shows
what the compressor kept. The next window starts with it, masked from the loss. The paper's quality
classifier is not given; :func:`assess` is a lexical stand-in built on its listed recap failures.
"""
from __future__ import annotations

import re
from collections import Counter
from enum import Enum

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.generate import generate_step
from mlx_lm.sample_utils import make_sampler

from .compressor import KV, window_cache

RECAP_OPEN = "\n<RECAP>\n"
RECAP_CLOSE = "\n</RECAP>\n"
RECAP_MAX_TOKENS = 128    # choice: a short bridge (~6% of a 2048-token window); Gemma's shorter recaps worked (§10.1.5.10)
RECAP_TEMPERATURE = 0.7   # choice: tbn_train's first-draft temperature; greedy decoding loops on small models
MIN_WORDS = 3             # choice: fewer words cannot summarise anything → garbage
MAX_CHAR_SHARE = 0.5      # choice: one character over half the text is the repeated-quote collapse (App. 31.3.0.8)
MIN_DISTINCT = 0.3        # choice: under 30% distinct words is a loop → garbage
GROUNDING = 0.5           # choice: half the recap's content words found in the window → high quality
_WORD = re.compile(r"\w{4,}")


class Quality(str, Enum):
    HIGH = "high"
    LOW = "low"
    GARBAGE = "garbage"


GATES = {Quality.HIGH: (1.0, 1.2), Quality.LOW: (0.6, 0.5), Quality.GARBAGE: (0.0, 0.0)}  # §8.2.1 fn. 15: (LoRA, compressor)


def assess(recap: str, window_text: str) -> Quality:
    """Garbage when too short, collapsed into one repeated character, or looping; else high when grounded."""
    words = recap.lower().split()
    chars = [ch for ch in recap if not ch.isspace()]
    if len(words) < MIN_WORDS or Counter(chars).most_common(1)[0][1] > MAX_CHAR_SHARE * len(chars):
        return Quality.GARBAGE
    if len(set(words)) < MIN_DISTINCT * len(words):
        return Quality.GARBAGE
    content = _WORD.findall(recap.lower())
    source = set(_WORD.findall(window_text.lower()))
    grounded = sum(w in source for w in content)
    return Quality.HIGH if content and grounded >= GROUNDING * len(content) else Quality.LOW


def generate_recap(model: nn.Module, slots: KV, open_ids: list[int], eos_ids, *, max_tokens: int = RECAP_MAX_TOKENS,
                   temperature: float = RECAP_TEMPERATURE) -> list[int]:
    """Token ids the model writes after ``slots`` ⊕ the opening marker (EOS excluded)."""
    cache = window_cache(slots, len(model.layers))
    out = []
    for token, _ in generate_step(mx.array(open_ids), model, max_tokens=max_tokens,
                                  sampler=make_sampler(temp=temperature), prompt_cache=cache):
        token = int(token)
        if token in eos_ids:
            break
        out.append(token)
    return out
