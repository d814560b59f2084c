"""The texts the line sends, by language, from one editable catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Phrase:
    """Words inside a text, rendered in the reader's language: a catalogue key and its
    placeholders."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


class Catalogue:
    """Render message texts by key and language, falling back to English."""

    def __init__(self, texts: Mapping[str, Mapping[str, str]]) -> None:
        self.texts = texts

    @classmethod
    def load(cls, override: str | None = None) -> Catalogue:
        """Load the packaged catalogue, with a coordinator's file laid over it."""
        source = resources.files("peerline.flows").joinpath("messages.yaml").read_text("utf-8")
        texts: dict[str, dict[str, str]] = yaml.safe_load(source)
        if override:
            extra = yaml.safe_load(Path(override).read_text("utf-8")) or {}
            for language, entries in extra.items():
                texts.setdefault(language, {}).update(entries)
        return cls(texts)

    def has(self, language: str, key: str) -> bool:
        """Say whether a language has its own text for a key."""
        return key in self.texts.get(language, {})

    def render(self, language: str, key: str, **params: Any) -> str:
        """Return the text for a key in a language, placeholders filled.

        A placeholder may be a Phrase, or a function of the language, so that each reader
        reads the words inside a text in their own language too.
        """
        return self._fill(language, key, params).strip()

    def words(self, language: str, value: Any) -> Any:
        """Return a placeholder's value in a language (a Phrase or function of it rendered)."""
        if isinstance(value, Phrase):
            # Not stripped: a phrase may begin with the space that joins it to the text.
            return self._fill(language, value.key, value.params)
        return value(language) if callable(value) else value

    def _fill(self, language: str, key: str, params: Mapping[str, Any]) -> str:
        values = {name: self.words(language, value) for name, value in params.items()}
        table = self.texts.get(language, {})
        template = table.get(key) or self.texts[DEFAULT_LANGUAGE][key]
        if "emergency" not in values:
            values["emergency"] = table.get("emergency") or self.texts[DEFAULT_LANGUAGE].get(
                "emergency", ""
            )
        return template.format(**values)
