"""RQ's in-process worker, with a command listener that lets the worker stop at once."""

from __future__ import annotations

from rq import SimpleWorker

# How long the listener's thread waits in one read; RQ asks for 60 s.
LISTEN_SECONDS = 1.0


class LineWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in this process), whose command listener stops within a
    second of being asked."""

    def subscribe(self) -> None:
        """Listen on the worker's command channel, as RQ does, in reads of one second."""
        # RQ's listener is a redis-py thread reading with a 60 s timeout. When it reads the
        # reply to the worker's UNSUBSCRIBE (at shutdown, or the end of a burst) before the
        # worker clears its running flag, it goes back to wait up to 60 s for a subscription,
        # and redis-py's `stop()` joins it without a bound: the worker hung for a minute as
        # it stopped (seen as 60.5 s test runs, and a deploy's stop would reach its SIGKILL).
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=LISTEN_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )
