"""Skip the regular-expression searches that cannot succeed: the literal text every match contains.

The rubric judge, the harm check and the validators search each new reply for some thirty-five cue
patterns, and a reply holds few cues. `Prefiltered` reads a pattern once and derives strings one of
which every match contains (a cliche pattern's "stay positive", "time heals", ...); a text holding none
of them is not searched. Results are always the pattern's own: the prefilter only skips searches that
find nothing. The derivation is conservative: a part it cannot read (a character class, a
back-reference, a case-insensitive literal outside ASCII) requires nothing, and a case-insensitive
pattern is screened only on ASCII text, where lower-casing is exactly its case folding.

A screen is one search of the text for a trie of its strings (`finder`), and a reader that looks for many cues
in one text screens them all with one search (`Screen`): the longest screen string starting at each place it
finds tells which patterns could match, since every other string starting there is a prefix of it.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator

if sys.version_info >= (3, 11):
    from re import _constants as C
    from re import _parser
else:  # pragma: no cover
    import sre_constants as C
    import sre_parse as _parser

EXACT_LIMIT = 64   # strings an exactly-known piece of a pattern may stand for before it is treated as unknown
SCREEN_SIZE = 24   # strings a screen looks for (~60 ns each): more are cut to shorter shared prefixes
SCREEN_MIN = 4    # ... but not shorter than this: most texts hold every short string
_ZERO_WIDTH = {C.AT, C.ASSERT, C.ASSERT_NOT}   # consume nothing: the literals around them are adjacent in a match
_REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT} | ({C.POSSESSIVE_REPEAT} if hasattr(C, "POSSESSIVE_REPEAT") else set())

Needs = frozenset[str] | None   # a match contains one of these strings; None: nothing known


def required_literals(pattern: re.Pattern) -> Needs:
    """Strings one of which every match of `pattern` contains (lower-cased if it ignores case); None if unknown."""
    if not isinstance(pattern.pattern, str) or pattern.flags & re.LOCALE:
        return None
    folded = bool(pattern.flags & re.IGNORECASE)
    return _sequence(_parser.parse(pattern.pattern, pattern.flags), folded)[1]


def _sequence(items, folded: bool) -> tuple[frozenset[str] | None, Needs]:
    """(the strings the sequence matches exactly, if known; what any match of it contains)."""
    run: frozenset[str] | None = frozenset([""])   # the exact strings of the literal run being read
    exact_throughout, best = True, None
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue
        exact, needs = _item(op, av, folded)
        if exact is not None and run is not None and len(run) * len(exact) <= EXACT_LIMIT:
            run = frozenset(a + b for a in run for b in exact)
            continue
        exact_throughout = False
        best = _better(_better(best, _contained(run)), needs)
        run = exact
    if exact_throughout:
        return run, _contained(run)
    return None, _better(best, _contained(run))


def _item(op, av, folded: bool) -> tuple[frozenset[str] | None, Needs]:
    if op is C.LITERAL:
        char = chr(av)
        if folded and not char.isascii():   # non-ASCII case folding is not lower-casing: unknown
            return None, None
        char = char.lower() if folded else char
        return frozenset([char]), frozenset([char])
    if op is C.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        if (add_flags | del_flags) & (re.IGNORECASE | re.LOCALE):
            return None, None
        return _sequence(sub, folded)
    if op is C.BRANCH:
        parts = [_sequence(alt, folded) for alt in av[1]]
        exacts = [e for e, _ in parts]
        exact = frozenset().union(*exacts) if None not in exacts else None
        needs = [n for _, n in parts]
        return (exact if exact is not None and len(exact) <= EXACT_LIMIT else None,
                frozenset().union(*needs) if None not in needs else None)
    if op in _REPEATS:
        low, high, sub = av
        exact, needs = _sequence(sub, folded)
        return _repeated(exact, low, high), needs if low >= 1 else None
    if hasattr(C, "ATOMIC_GROUP") and op is C.ATOMIC_GROUP:
        return _sequence(av, folded)
    return None, None   # a character class, any character, a back-reference, a conditional: unknown


def _repeated(exact: frozenset[str] | None, low: int, high: int) -> frozenset[str] | None:
    """The exact strings of `low` to `high` repetitions of `exact`, while they stay few."""
    if exact is None or high > 2:
        return None
    out, power = set(), frozenset([""])
    for times in range(high + 1):
        if times >= low:
            out |= power
        if len(out) > EXACT_LIMIT:
            return None
        power = frozenset(a + b for a in power for b in exact)
    return frozenset(out)


def _contained(exact: frozenset[str] | None) -> Needs:
    return exact if exact is not None and "" not in exact else None


def _better(a: Needs, b: Needs) -> Needs:
    """The more selective requirement: longer shortest string (spaces at its ends say nothing of how rare it is:
    "fault" before "your "), then fewer strings."""
    if a is None or b is None:
        return a if b is None else b
    return max(a, b, key=lambda s: (min(len(x.strip()) for x in s), -len(s)))


def screen(needs: frozenset[str]) -> tuple[str, ...]:
    """At most about SCREEN_SIZE strings, one of which a text holding one of `needs` contains: each cut to a
    shared prefix when there are too many, and a string dropped when a shorter one inside it is looked for."""
    cut = max(map(len, needs))
    while cut > SCREEN_MIN and len({s[:cut] for s in needs}) > SCREEN_SIZE:
        cut -= 1
    prefixes = {s[:cut] for s in needs}
    return tuple(sorted(s for s in prefixes if not any(t != s and t in s for t in prefixes)))


def finder(strings: Iterable[str]) -> re.Pattern:
    """A pattern whose match at a place is the longest of `strings` starting there: their trie, each node's longer
    continuations tried before it ends (greedily), so a search stops at the first place holding any of them."""
    trie: dict = {}
    for s in strings:
        node = trie
        for char in s:
            node = node.setdefault(char, {})
        node[""] = {}   # a string ends here

    def spelled(node: dict) -> str:
        branches = [re.escape(char) + spelled(child) for char, child in sorted(node.items()) if char]
        body = "" if not branches else branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node and body else body

    return re.compile(spelled(trie))


class Prefiltered:
    """A compiled pattern whose `search`, `findall` and `finditer` skip texts holding none of its required
    literals (the same results as the pattern's own)."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = re.compile(pattern, flags)
        needs = required_literals(self.pattern)
        self.screen = screen(needs) if needs is not None else None
        self.folded = bool(self.pattern.flags & re.IGNORECASE)   # screened on lower-cased text

    def could_match(self, text: str) -> bool:
        """False only when no match is possible (a case-insensitive pattern is screened on ASCII text only)."""
        if self.screen is None:
            return True
        if self.folded:
            if not text.isascii():
                return True
            text = text.lower()
        for s in self.screen:
            if s in text:
                return True
        return False

    def search(self, text: str) -> re.Match | None:
        return self.pattern.search(text) if self.could_match(text) else None

    def findall(self, text: str) -> list:
        return self.pattern.findall(text) if self.could_match(text) else []

    def finditer(self, text: str) -> Iterator[re.Match]:
        return self.pattern.finditer(text) if self.could_match(text) else iter(())


class Screen:
    """The screens of several patterns read in one search of a text: `passing(text)` is the set of those whose
    `could_match(text)` holds, for a reader that looks for many cues in each new text."""

    def __init__(self, patterns: Iterable[Prefiltered]) -> None:
        self.patterns = tuple(patterns)
        self._unscreened = frozenset(p for p in self.patterns if p.screen is None)
        self._scans = []   # (folded, finder of every screen string, the patterns each found string lets through)
        for folded in (False, True):
            screened = {p: frozenset(p.screen) for p in self.patterns if p.screen is not None and p.folded == folded}
            strings = frozenset().union(*screened.values())
            if strings:   # a string found lets through every pattern screened by it or by a prefix of it
                owners = {s: frozenset(p for p, own in screened.items() if any(s[:n] in own for n in range(1, len(s) + 1)))
                          for s in strings}
                self._scans.append((folded, finder(strings), owners, frozenset(screened)))

    def passing(self, text: str) -> frozenset[Prefiltered]:
        """The patterns that could match `text`: each as its own `could_match` answers."""
        found = set(self._unscreened)
        for folded, find, owners, screened in self._scans:
            seen = text
            if folded:
                if not text.isascii():
                    found |= screened
                    continue
                seen = text.lower()
            search, at = find.search, 0
            while (m := search(seen, at)) is not None:   # each place a screen string starts
                found |= owners[m.group()]
                at = m.start() + 1
        return frozenset(found)

    def read(self, text: str) -> Screened:
        """`text` screened once for all the patterns, to search it for any of them."""
        return Screened(text, self.passing(text))


class Screened:
    """A text and the patterns of a `Screen` that could match it: searches skip the others (the same results as
    each pattern's own)."""

    __slots__ = ("text", "passing")

    def __init__(self, text: str, passing: frozenset[Prefiltered]) -> None:
        self.text, self.passing = text, passing

    def search(self, cue: Prefiltered) -> re.Match | None:
        return cue.pattern.search(self.text) if cue in self.passing else None

    def findall(self, cue: Prefiltered) -> list:
        return cue.pattern.findall(self.text) if cue in self.passing else []
