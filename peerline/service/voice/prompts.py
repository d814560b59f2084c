"""What the voice line says, by language, from one editable catalogue."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from peerline.service.services import LineServices
from peerline.service.voice.settings import voice_settings


class Prompts:
    """What the voice line says, by language, from one editable catalogue."""

    def __init__(self, texts: Mapping[str, Mapping[str, str]]) -> None:
        self.texts = texts

    @classmethod
    def load(cls, override: str | None = None) -> Prompts:
        """Load the packaged prompts, with a coordinator's file laid over them."""
        source = resources.files("peerline.flows").joinpath("voice_messages.yaml")
        texts: dict[str, dict[str, str]] = yaml.safe_load(source.read_text("utf-8"))
        if override:
            extra = yaml.safe_load(Path(override).read_text("utf-8")) or {}
            for language, entries in extra.items():
                texts.setdefault(language, {}).update(entries)
        return cls(texts)

    def languages(self) -> list[str]:
        """Return the languages the line can speak."""
        return list(self.texts)

    def text(self, language: str, key: str, /, **params: Any) -> str:
        """Return a prompt in a language (English when it has none), placeholders filled."""
        table = self.texts.get(language) or self.texts["en"]
        template = table.get(key) or self.texts["en"][key]
        # One line of text, without the space an empty placeholder leaves before a stop.
        text = " ".join(template.format(**params).split())
        return re.sub(r" +([.,;:!?])", r"\1", text)


@lru_cache(maxsize=8)
def prompts_for(override: str | None) -> Prompts:
    """Return the prompts, loaded once per process."""
    return Prompts.load(override)


def prompts(line: LineServices) -> Prompts:
    """Return the line's voice prompts."""
    return prompts_for(voice_settings(line).messages_file)
