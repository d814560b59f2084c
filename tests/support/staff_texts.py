"""What a safety alert can say about a texter or caller, in each language, for segment tests."""

from __future__ import annotations

from peerline.flows.catalogue import Catalogue
from peerline.service.crisis import CATEGORIES, MODEL_CATEGORY

# The safety alert's words ({what} in safety_alert), one key per way an alert is raised.
ALERT_WORDS = (
    "alert_what_crisis",
    "alert_what_call",
    "alert_what_voicemail",
    "alert_what_raised",
    "alert_what_blocked",
    "alert_what_opted_out",
)
LONG_NAME = "Maximiliana"  # a long first name; the line uses first names
LONG_REFERENCE = "VM-999999"  # a voicemail's reference after many collisions


def crisis_kinds(catalogue: Catalogue, language: str) -> list[str]:
    """Return every crisis category in words in a language."""
    return [
        catalogue.render(language, f"crisis_kind_{category}")
        for category in (*CATEGORIES, MODEL_CATEGORY)
    ]


def longest_crisis_kind(catalogue: Catalogue, language: str) -> str:
    """Return the longest crisis category in words in a language."""
    return max(crisis_kinds(catalogue, language), key=len)


def alert_words(catalogue: Catalogue, language: str) -> list[str]:
    """Return every {what} a safety alert can say in a language, with each crisis category."""
    return [
        catalogue.render(language, key, kind=kind, reference=LONG_REFERENCE, name=LONG_NAME)
        for key in ALERT_WORDS
        for kind in crisis_kinds(catalogue, language)
    ]


def longest_alert_words(catalogue: Catalogue, language: str) -> str:
    """Return the longest {what} a safety alert can say in a language."""
    return max(alert_words(catalogue, language), key=len)
