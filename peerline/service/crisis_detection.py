"""What the crisis detector finds in a message: its categories, their order in the queue, and
a detection (shared by the detector and the reading of another person's words)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Categories, most urgent first. A message matching several reports the most urgent.
CATEGORIES: tuple[str, ...] = (
    "attempt",  # an attempt under way: pills or poison already taken, a deep cut bleeding
    "danger_place",  # on a bridge, roof, ledge or the tracks, or on the way there
    "means",  # pills, a gun, a blade or a rope at hand
    "preparation",  # saving pills, looking up doses, a note or will, gifts, goodbyes
    "plan",  # when, where or how worked out
    "intent",  # "I am going to"
    "method",  # a way of dying thought of
    "active_thoughts",  # thoughts of killing oneself
    "past_attempt",  # an attempt before
    "self_harm",  # cutting, burning, hitting oneself
    "wish_dead",  # wishing to be dead or not to wake up
    "burden_hopelessness",  # a burden to others, no way forward
)
#: The categories of earlier versions, still accepted in a coordinator's phrase file.
ALIASES: Mapping[str, str] = {
    "imminent": "plan",
    "overdose": "attempt",
    "suicide": "active_thoughts",
}
#: The `phrase` of a detection only the statistical layer made (its category is the one the
#: layer's category regression names); also the category of a model without that regression.
MODEL_CATEGORY = "model"
#: Told of someone else in words the detector missed (rewritten as the writer's, read again),
#: crisis words in these categories raise the flag: their danger is now (an attempt under way, a
#: place of danger, preparations, a plan, an intent; a means with "tonight" or a goodbye). A
#: means they own (a gun in a nightstand) or their thoughts get the worried text only. What the
#: detector found in the words as written (their quoted words) stays raised, whatever it is.
OTHERS_FLAGGED = frozenset({"attempt", "danger_place", "preparation", "plan", "intent"})
#: The category of someone else out of reach with a means, a place or a goodbye.
OTHERS_OUT_OF_REACH_CATEGORY = "intent"
#: The `phrase` of a detection of someone else out of reach with a means, a place or a goodbye
#: (`crisis_others.in_danger_now`), raised in `OTHERS_OUT_OF_REACH_CATEGORY`.
OTHERS_OUT_OF_REACH = "out of reach"


def priority_of(category: str | None) -> int:
    """Return a category's place in the queue: higher goes first, 0 for no crisis.

    An attempt under way ranks highest; a category this module does not know (a supporter's
    alert) ranks as the lowest crisis, 1.
    """
    if category is None:
        return 0
    category = ALIASES.get(category, category)
    if category not in CATEGORIES:
        return 1
    return len(CATEGORIES) - CATEGORIES.index(category)


@dataclass(frozen=True)
class Detection:
    """What the detector found in one message."""

    matched: bool
    language: str | None = None
    phrase: str | None = None
    category: str | None = None

    @property
    def priority(self) -> int:
        """Return the queue priority the category gives (0 when nothing matched)."""
        return priority_of(self.category) if self.matched else 0


NO_MATCH = Detection(matched=False)
