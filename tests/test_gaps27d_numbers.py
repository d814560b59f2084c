"""A number word ending a short #note is its score, but "one" (session 27d).

"#note good chat four" was saved without a score and the supporter asked for the 1-5 they
had just given: a number word last counted only set apart from the words before it or after
topic words alone (0d09210, so that "lonely, heavy one" keeps its pronoun). Now "two" to
"five" ("dos" to "cinco") last are a score unless a time or a count reads them ("ended at
five"); "one" and "uno", pronouns too, still need to stand apart. Driven by signed webhooks,
as Twilio sends them.
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


@pytest.mark.parametrize(
    ("note", "score", "words"),
    [
        ("#note good chat four", 4, "good chat"),
        ("#note hard one five", 5, "hard one"),
        ("#note Hard one. Four!", 4, "Hard one"),
        ("#note buena charla cuatro", 4, "buena charla"),
        ("#note una dificil dos", 2, "una dificil"),
    ],
)
def test_a_number_word_ending_a_short_note_is_its_score(
    line: LineServices, hooks: Webhooks, note: str, score: int, words: str
) -> None:
    kept, answer = noted(line, hooks, note)
    assert kept.supporter_score == score, answer
    assert f"{score}/5" in answer and "How did it go" not in answer, answer
    assert line.vault.decrypt(kept.note_enc or "") == words


@pytest.mark.parametrize(
    "note",
    [
        "#note lonely, heavy one",
        "#note heavy one",
        "#note una dificil, una",
        "#note fue uno dificil, terminamos a las cinco",
        "#note talked about her mom, ended at five",
        "#note she cares for her two",
    ],
)
def test_one_or_a_time_or_a_count_last_is_no_score(
    line: LineServices, hooks: Webhooks, note: str
) -> None:
    kept, answer = noted(line, hooks, note)
    assert kept.supporter_score is None, answer
    # Kept whole as the supporter's words, and the 1-5 asked for.
    assert line.vault.decrypt(kept.note_enc or "") == note.removeprefix("#note ")
    assert "How did it go, 1 (hard) to 5 (went well)" in answer, answer
