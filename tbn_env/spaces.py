"""Gymnasium spaces of Therapy-v0 and the observations that fill them.

Numeric observations are Dicts of Box and Discrete, which stable-baselines3 accepts as they are
(`MultiInputPolicy`) or after `FlattenObservation`. Text spaces hold any printable Unicode
(`PrintableText`), since gymnasium's `Text` space defaults to alphanumerics only.
"""
from __future__ import annotations

import operator
import string
import unicodedata
from functools import lru_cache

import numpy as np
from gymnasium import spaces

from .buckets import BUCKETS
from .dimensions import JUDGE_DIMENSIONS
from .graph import NODE_COUNT
from .loa import LOA_DIMENSIONS
from .kernel import BatchKernel
from .signals import AFFECTS, AROUSAL_LEVELS, Signals
from .stance import STANCES

TEXT_CHARSET = frozenset(string.ascii_letters + string.digits + string.punctuation + " \n\t"
                         + "’‘“”—–…éèêàâçïîôöüñáíóú")  # what `sample()` draws from: ordinary prose
MAX_ACTION_CHARS = 4096     # a therapist turn with its thought: generous for 512 generated tokens
MAX_UTTERANCE_CHARS = 2048  # the client's words as observed
_LAYOUT = frozenset("\n\t")


class UniformBox(spaces.Box):
    """A Box of finite float bounds whose `sample()` draws what gymnasium's Box draws, in one call.

    Box.sample sorts every coordinate by its kind of interval on each call (≈ 20 µs for 12 numbers, more than a
    Therapy-Scores step's compiled turn); with every bound finite it comes down to one `Generator.uniform` draw
    between the bounds, cast to the dtype, which is what this does: the same numbers from the same generator state
    (`tests/env/test_spaces.py` holds it to Box.sample).
    """

    def __init__(self, low, high, shape=None, dtype=np.float32, seed=None) -> None:
        super().__init__(low, high, shape, dtype, seed)
        if self.dtype.kind != "f" or not self.is_bounded("both"):
            raise ValueError(f"UniformBox needs finite bounds and a float dtype, got {self}")
        # the bounds Box.sample hands to Generator.uniform (as numbers when every coordinate shares them: the same
        # draws, without broadcasting arrays of bounds on each call)
        low, high = self.low.astype(np.float64), self.high.astype(np.float64)
        same = (low == low.flat[0]).all() and (high == high.flat[0]).all()
        self._bounds = (low.flat[0].item(), high.flat[0].item()) if same else (low, high)

    def sample(self, mask: None = None, probability: None = None) -> np.ndarray:
        if mask is not None or probability is not None:
            return super().sample(mask, probability)   # refused there, with gymnasium's message
        return self.np_random.uniform(*self._bounds, self.shape).astype(self.dtype)


def scores_space(action_scale: str) -> UniformBox:
    """The scores action space: the 12 judge scores on 0-10, or [-1, 1] mapped to them (`action_scale="unit"`)."""
    low, high = (-1.0, 1.0) if action_scale == "unit" else (0.0, 10.0)
    return UniformBox(low, high, (len(JUDGE_DIMENSIONS),), np.float32)


def _printable_char(ch: str) -> bool:
    """Anything but control characters (newline and tab aside) and lone surrogates."""
    return ch.isprintable() or ch in _LAYOUT or unicodedata.category(ch) not in ("Cc", "Cs")


class PrintableText(spaces.Text):
    """A Text space holding any Unicode text but control characters (newline and tab allowed).

    gymnasium's `Text` admits only its charset; ours samples from TEXT_CHARSET but contains every
    printable character, so a client speaking Greek or Japanese is observed as it spoke, while
    control characters (terminal escapes, NUL, carriage returns) stay outside the space.
    """

    def contains(self, x) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length and \
            all(map(_printable_char, x))


def text_space(max_length: int) -> spaces.Text:
    return PrintableText(max_length=max_length, min_length=0, charset=TEXT_CHARSET)


def printable(text: str, max_length: int | None = MAX_UTTERANCE_CHARS) -> str:
    """`text` cut to `max_length` (None: uncut) with control characters removed; any other Unicode is kept."""
    text = text if max_length is None else text[:max_length]
    if text.isprintable():   # the common case, in one C call (newline and tab fall to the check below)
        return text
    return text if all(map(_printable_char, text)) else "".join(filter(_printable_char, text))


def observation_space(mode: str, text: bool, max_turns: int, max_sessions: int) -> spaces.Dict:
    """"tmog": what a therapist could know (the TMoG and the client's signals); "full": the true state as well."""
    box = lambda lo, hi, n: spaces.Box(lo, hi, (n,), np.float32)  # noqa: E731
    fields: dict[str, spaces.Space] = {
        "tmog": box(0.0, 10.0, NODE_COUNT),
        "affect": spaces.Discrete(len(AFFECTS)),
        "arousal": spaces.Discrete(AROUSAL_LEVELS),
        "rupture_cue": spaces.Discrete(2),
        "stage": spaces.Discrete(4),
        "stance": spaces.Discrete(len(STANCES)),
        "rupture": spaces.Discrete(2),
        "turn": spaces.Discrete(max_turns + 1),
        "session": spaces.Discrete(max_sessions + 2),
    }
    if mode == "full":
        fields.update({
            "buckets": box(0.0, 1.0, len(BUCKETS)),
            "phase": spaces.Discrete(4),
            "levels": box(0.0, 10.0, NODE_COUNT),
            "loa": box(-10.0, 10.0, len(LOA_DIMENSIONS)),
            "taie": spaces.Box(np.array([-10, -10, -10, 0], np.float32), np.array([10, 10, 10, 1], np.float32),
                               dtype=np.float32),
            "readings": box(0.0, 1.0, 3),  # coiling, alliance, TMoG accuracy
        })
    if text:
        fields["client_utterance"] = text_space(MAX_UTTERANCE_CHARS)
    return spaces.Dict(fields)


def observe_batch(kernel: BatchKernel, stance: np.ndarray, rupture: np.ndarray, turn: np.ndarray,
                  session: np.ndarray, mode: str, signals: Signals, row: int | None = None) -> dict:
    """Every client's observation, one array per key; with `row=i`, client i's alone (what `row_of` reads of the
    batch's, built directly).

    "tmog": the therapist's model and what the client shows (`signals`); "full" adds the true state.
    """
    k = kernel
    # Box keys are float32; Discrete keys int64 arrays, or for one row Python ints
    count = _int64 if row is None else item_of(row)
    obs = {"tmog": k.tmog.astype(np.float32) if row is None else k.tmog[row].astype(np.float32),
           "affect": count(signals.affect), "arousal": count(signals.arousal),
           "rupture_cue": count(signals.rupture_cue), "stage": count(k.stage) - 1, "stance": count(stance),
           "rupture": count(rupture), "turn": count(turn), "session": count(session)}
    if row is not None:
        obs["rupture"] = int(obs["rupture"])   # the flag's item is a bool
    if mode == "full":
        rows = slice(None) if row is None else slice(row, row + 1)

        def box(values: np.ndarray) -> np.ndarray:   # the rows' float32 values (one row's: its vector)
            return values.astype(np.float32) if row is None else values[0].astype(np.float32)
        obs.update(buckets=box(k.buckets[rows]), phase=count(k.phase),
                   levels=box(k.levels[rows]), loa=box(k.loa[rows]),
                   taie=box(np.column_stack([k.taie[rows], k.transformation[rows]])),
                   readings=box(np.column_stack(k.readings(rows))))
    return obs


def _int64(values: np.ndarray) -> np.ndarray:
    return values.astype(np.int64)


@lru_cache(maxsize=None)
def item_of(i: int) -> operator.methodcaller:
    """`values.item(i)`, a Python value, as one callable per row index (made once)."""
    return operator.methodcaller("item", i)


def row_of(obs: dict[str, np.ndarray], i: int) -> dict:
    """Row i of a batched observation: arrays for Box keys, Python ints for Discrete ones."""
    return {key: value[i].item() if value.ndim == 1 else value[i] for key, value in obs.items()}
