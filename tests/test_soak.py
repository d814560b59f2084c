"""A bounded soak: thousands of messages across dozens of chats, several workers, checked
for exactly-once, in-order delivery from the local Twilio server's record."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import lines
from tests.support.deploy import deployed
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.servers
CHATS, ROUNDS, WORKERS = 24, 42, 3  # 24 chats x 42 rounds x 2 sides = 2,016 relayed texts


def line_file() -> str:
    """Return a line with a supporter always on shift for every chat."""
    return lines.always_on(CHATS, 3000)


def test_soak_exactly_once_in_order(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    with deployed(
        tmp_path,
        postgres_server,
        redis_server,
        line_file(),
        PEERLINE_SHIFT_CHAT_CAP="100",
        # Scripted texters type faster than any person: the flood limit would rightly hold them.
        PEERLINE_FLOOD_PER_MINUTE="10000",
        # A backlog is expected here; the sweep is for work Redis lost, not for work queued.
        PEERLINE_SWEEP_STALE_SECONDS="300",
    ) as d:
        for _ in range(WORKERS):
            d.start_worker("--sweep-every", "5")
        begun = time.monotonic()

        def texts_saying(words: str) -> int:
            return sum(words in m["body"] for m in d.twilio.messages)

        texters = [f"+1647555{4000 + n}" for n in range(CHATS)]
        supporters = [f"+1416555{3000 + n}" for n in range(CHATS)]
        for texter in texters:
            assert d.sms(texter, "yes") == 200
        d.wait_until(lambda: texts_saying("#take within") >= CHATS, 60, "an offer to everyone")
        for supporter in supporters:
            assert d.sms(supporter, "#take") == 200
        d.wait_until(lambda: texts_saying("connected with") >= CHATS, 60, "all connected")

        # Who is chatting with whom, from the texts each side received.
        def took(supporter: str) -> list[str]:
            return [b for b in d.bodies_to(supporter) if b.startswith("You are now chatting")]

        d.wait_until(lambda: all(took(s) for s in supporters), 60, "every supporter told")
        pairs = {s: took(s)[0].split("with ")[1].split(".")[0] for s in supporters}
        # Whoever was first in the queue met whoever was free: read each texter's supporter.
        partner = {}
        for index, texter in enumerate(texters):
            told = [b for b in d.bodies_to(texter) if "connected with Peer" in b]
            found = re.search(r"connected with Peer(\d+)", told[0])
            assert found is not None
            partner[index] = int(found.group(1))
        assert sorted(partner.values()) == list(range(CHATS))
        print(f"\nsoak: {CHATS} chats connected after {time.monotonic() - begun:.1f} s")

        def converse(index: int) -> None:
            texter, supporter = texters[index], supporters[partner[index]]
            for n in range(ROUNDS):
                assert d.sms(texter, f"t{index}-{n}") == 200
                assert d.sms(supporter, f"s{index}-{n}") == 200

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(converse, range(CHATS)))
        posting = time.monotonic() - started
        total = CHATS * ROUNDS * 2

        def said(bodies: list[str]) -> list[str]:
            # Chat texts still pending for one recipient go together, one a line (both ways).
            return "\n".join(bodies).split("\n")

        def relayed() -> int:
            every = said([m["body"] for m in d.twilio.messages])
            return sum(1 for line in every if re.search(r": [ts]\d+-\d+$", line))

        d.wait_until(lambda: relayed() >= total, 180, f"{total} relayed texts")
        time.sleep(2)  # room for a duplicate to show itself
        sent = time.monotonic() - started
        print(f"\nsoak: {total} texts posted in {posting:.1f} s, all delivered in {sent:.1f} s")

        bodies = Counter(said([m["body"] for m in d.twilio.messages]))
        duplicates = [b for b, c in bodies.items() if c > 1 and (": t" in b or ": s" in b)]
        assert duplicates == []
        for index, texter in enumerate(texters):
            supporter = supporters[partner[index]]
            alias = pairs[supporter]
            lines = said(d.bodies_to(supporter))
            to_supporter = [b for b in lines if b.startswith(f"{alias}: t")]
            assert to_supporter == [f"{alias}: t{index}-{n}" for n in range(ROUNDS)]
            name = f"Peer{partner[index]:02d}"
            to_texter = [b for b in said(d.bodies_to(texter)) if b.startswith(f"{name}: s")]
            assert to_texter == [f"{name}: s{index}-{n}" for n in range(ROUNDS)]
