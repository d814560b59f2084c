"""A number word in a #note is a score only where a score stands (session 27).

"#note lonely, heavy one" was read as the score 1: "one" after an adjective is a pronoun.
A score is the first word, the word after "score" or "rating", or the last one set apart
from the words before it. Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from peerline.service.models import ContactRecord
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import take_chat, texts_to
from tests.support.line import Webhooks


def noted(line: LineServices, hooks: Webhooks, note: str) -> tuple[ContactRecord, str]:
    """Have Sam end a chat and note it; return the chat's record and the answer to the note."""
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.SAM, "#done")
    hooks.sms(lines.SAM, note)
    with line.db.session() as session:
        kept = session.scalars(select(ContactRecord)).one()
        session.expunge(kept)
    return kept, texts_to(line, lines.SAM)[-1]


def test_one_after_an_adjective_is_no_score(line: LineServices, hooks: Webhooks) -> None:
    kept, answer = noted(line, hooks, "#note lonely, heavy one")
    assert kept.supporter_score is None and kept.topics == "lonely"
    assert line.vault.decrypt(kept.note_enc or "") == "lonely, heavy one"
    assert "1/5" not in answer, answer


@pytest.mark.parametrize(
    ("note", "score", "words"),
    [
        ("#note one, lonely", 1, ""),
        ("#note lonely, family, four", 4, ""),
        ("#note lonely five", 5, ""),
        ("#note talked about work, score four, heavy", 4, "talked about work, heavy"),
        ("#note a heavy one 2", 2, "a heavy one"),
    ],
)
def test_a_number_word_where_a_score_stands_is_the_score(
    line: LineServices, hooks: Webhooks, note: str, score: int, words: str
) -> None:
    kept, answer = noted(line, hooks, note)
    assert kept.supporter_score == score
    assert f"{score}/5" in answer, answer
    if words:
        assert line.vault.decrypt(kept.note_enc or "") == words
