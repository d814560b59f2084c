"""Words after a chat tell a supporter in another chat where a reply would go (session 28).

After Sam's chat with one texter ended and Sam took the next, the first texter's "were at the
er now. thx" reached Sam marked "(The chat has ended: a reply here won't reach them.)". Sam's
"so glad you're safe" to the line's number then reached the other texter, whose chat it is.
Now the note names the chat a reply reaches.
"""

from __future__ import annotations

from sqlalchemy import select

from peerline.service.models import Contact
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import take_chat, texts_to
from tests.support.line import Webhooks

ER = "were at the er now. thx"


def alias_of(line: LineServices, phone_order: int) -> str:
    """Return the alias of the texter who wrote first (0) or second (1)."""
    with line.db.session() as session:
        return session.scalars(select(Contact.alias).order_by(Contact.id)).all()[phone_order]


def test_the_note_names_the_chat_a_reply_would_reach(line: LineServices, hooks: Webhooks) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "thanks for tonight")
    hooks.sms(lines.SAM, "#done")
    take_chat(line, hooks, lines.TEXTER_2, lines.SAM)
    first, second = alias_of(line, 0), alias_of(line, 1)
    to_sam = len(texts_to(line, lines.SAM))
    hooks.sms(lines.TEXTER, ER)
    (passed,) = texts_to(line, lines.SAM)[to_sam:]
    assert passed.startswith(f"[{first}, after your chat] {ER} "), passed
    assert passed.endswith(f"(The chat has ended: a reply here goes to {second}, your chat now.)")
    # And it is so: Sam's answer reaches the chat Sam is in.
    told = len(texts_to(line, lines.TEXTER))
    hooks.sms(lines.SAM, "so glad you're safe")
    assert texts_to(line, lines.TEXTER_2)[-1].endswith("so glad you're safe")
    assert len(texts_to(line, lines.TEXTER)) == told


def test_with_no_other_chat_the_note_says_a_reply_wont_reach_them(
    line: LineServices, hooks: Webhooks
) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.SAM, "#done")
    to_sam = len(texts_to(line, lines.SAM))
    hooks.sms(lines.TEXTER, ER)
    (passed,) = texts_to(line, lines.SAM)[to_sam:]
    assert passed.endswith("(The chat has ended: a reply here won't reach them.)"), passed
