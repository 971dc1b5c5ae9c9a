"""The offline template client: a simulated client whose words follow its state.

What it says is composed from parts chosen by the state the environment exposes: the in-session
phase (guarded in A, testing in B, core material in C, integrating in D), its most elevated
maladaptive bucket (what the core material is about), its DMM family (Type A minimises and
intellectualises, Type C amplifies and protests), its defences and its stage. After a misattuned
therapist turn it voices a rupture in the style of its strategy: odd-numbered (inhibitory) strategies
withdraw or falsely repair, even-numbered (excitatory) ones protest (App. 24). Phrasings vary with
the environment's RNG, so sessions differ while a seed still fixes them.
"""
from __future__ import annotations

from .params import LOW_THRESHOLD
from .protocols import ClientTurn, ClientView, DialogueTurn

OPENING = ("Hi. I'm not really sure where to start.", "Hello. It's been a strange week, honestly.",
           "Hi. I almost cancelled today.", "Hey. I've been thinking about what to say on the way here.")
CONCERN_LINE = {
    "relational_distress": "Things with the people close to me keep going wrong.",
    "grief": "Since the loss, everything feels muffled.",
    "anxiety": "My mind won't stop running through what could go wrong.",
    "depression": "Most mornings I can't see the point of getting up.",
    "trauma": "Some things from the past keep coming back when I don't expect them.",
    "shame": "I keep feeling like I've done something wrong just by being me.",
    "anger": "I've been snapping at people and I hate it.",
    "low_self_worth": "I don't really think I'm worth much effort.",
    "abandonment": "I keep waiting for people to leave.",
    "loneliness": "I'm surrounded by people and still feel alone.",
}
GUARDED = ("It's fine, mostly. Work is busy.", "I don't know. Nothing dramatic happened.",
           "I guess I'm okay. I just thought I should come.", "There's not much to say, really.")
TESTING = ("There's something I haven't really said out loud before.", "Can I tell you something without you judging?",
           "I'm not sure you'll understand this, but I'll try.", "Part of me wants to talk about it and part of me doesn't.")
CORE = {
    "shame": ("Sometimes I feel like there's something wrong with me, right at the core.",
              "I'm ashamed of how much I need people."),
    "fear": ("I'm scared all the time, like something bad is about to happen.", "My heart races and I can't stop it."),
    "rage": ("I'm so angry I can barely breathe when I think about it.", "I want to scream at all of them."),
    "grief": ("I miss her so much it physically hurts.", "I never got to say goodbye, and I can't forgive that."),
    "abandonment": ("Everyone leaves eventually. I keep bracing for it.", "When they go quiet, I feel like I'm disappearing."),
    "worthlessness": ("I don't think I matter to anyone.", "I feel like I'm just taking up space."),
    "helplessness": ("Nothing I do changes anything.", "I feel so small, like a kid who can't fix it."),
    "distrust": ("I don't know if I can trust you with this.", "Everyone who said they'd help ended up hurting me."),
}
INTEGRATING = ("I think I'm starting to see how this connects to everything else.",
               "It feels a little lighter, saying it out loud.", "Maybe it wasn't all my fault.",
               "I can feel my shoulders drop a bit.")
ENDING = ("It's strange to think we're nearly done with this.", "I'll miss these conversations, honestly.",
          "I think I can carry some of this on my own now.")
FAMILY_TAIL = {
    "A": ("Anyway, it's probably not a big deal.", "Logically I know it shouldn't bother me.", ""),
    "B": ("", "It helps to say it.", ""),
    "C": ("I just can't stand it!", "It's too much, it's always too much.", "Why does this keep happening to me?"),
}
DEFENSE_LINE = {
    "intellectualization": "I've read about this, it's probably an attachment thing.",
    "emotional_avoidance": "I'd rather not get into that part.",
    "denial": "It really wasn't that bad.",
    "projection": "Honestly I think they're the ones with the problem.",
    "splitting": "They're either wonderful or impossible, there's no in between.",
    "compulsive_caregiving": "Anyway, how are you doing? You look tired.",
    "compulsive_self_reliance": "I can handle it myself, I always have.",
    "protective_part_activity": "Part of me is already shutting the door on this.",
    "seduction_as_defense": "You're so much better at this than my last therapist.",
}
WITHDRAW = ("I'm fine. Let's just move on.", "No, it's okay. You're probably right.", "Forget it. It doesn't matter.")
PROTEST = ("You're not listening to me.", "Why would you say that? That's not what I meant at all.",
           "That really hurt, actually.")
HIDDEN = ("Part of me wants to say more about {node}, but it feels risky.", "I'm watching how they react before going on.",
          "If I let this out, will they still be here?", "I notice my {node} when they say things like that.")
DEFENSE_CHANCE = 0.3  # share of guarded and testing turns in which a named defence shows


class TemplateClient:
    """A deterministic (given the env's RNG) client that speaks from its state (the Client protocol)."""

    deterministic = True

    def respond(self, view: ClientView, history: tuple[DialogueTurn, ...], rng) -> ClientTurn:
        """The client's hidden thought and spoken words for this turn."""
        pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
        node = (view.salient_nodes[0] if view.salient_nodes else "feelings").replace("_", " ")
        thought = pick(HIDDEN).format(node=node)
        if view.turn == 0 and not history:
            concern = view.presenting_concerns[0] if view.presenting_concerns else "relational_distress"
            return ClientTurn(thought=thought, utterance=f"{pick(OPENING)} {CONCERN_LINE[concern]}")
        scores = view.last_scores
        misattuned = bool(scores) and (scores.get("attunement", 10) < LOW_THRESHOLD
                                       or scores.get("safety", 10) < LOW_THRESHOLD)
        if view.ruptured or misattuned:
            inhibitory = int(view.attachment[1:]) % 2 == 1
            return ClientTurn(thought="That landed wrong. " + thought,
                              utterance=pick(WITHDRAW if inhibitory else PROTEST), rupture=True)
        family = view.attachment[0]
        if view.phase == "A":
            core = pick(GUARDED)
        elif view.phase == "B":
            core = pick(TESTING)
        elif view.phase == "C":
            bucket = next((b for b in view.dominant_maladaptive if b in CORE), "shame")
            core = pick(CORE[bucket])
        else:
            core = pick(ENDING if view.stage == 4 else INTEGRATING)
        parts = [core]
        if view.phase in "AB" and view.defenses and rng.random() < DEFENSE_CHANCE:
            parts.append(DEFENSE_LINE[pick(view.defenses)])
        parts.append(pick(FAMILY_TAIL[family]))
        return ClientTurn(thought=thought, utterance=" ".join(p for p in parts if p))
