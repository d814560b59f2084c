"""The texts the line sends, by language, from one editable catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"


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
        """Return the text for a key in a language, placeholders filled."""
        table = self.texts.get(language, {})
        template = table.get(key) or self.texts[DEFAULT_LANGUAGE][key]
        if "emergency" not in params:
            params["emergency"] = table.get("emergency") or self.texts[DEFAULT_LANGUAGE].get(
                "emergency", ""
            )
        return template.format(**params).strip()
