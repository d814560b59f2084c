"""The line's crisis detector: the packaged phrases plus a coordinator's extra file, kept current
in every process."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from peerline.service.crisis import CrisisDetector, Detection, priority_of

_log = logging.getLogger(__name__)


class LineDetector:
    """The line's detector: the packaged phrases plus the coordinator's extra file, kept current.

    Phrases a coordinator adds in the console land in the extra file; every process (the web
    process and each worker) checks the file's version stamp (modification time and size, one
    ``stat``) before a check and reloads when it changed, so no process runs stale phrases. A
    file that no longer loads leaves the last good detector in place.
    """

    def __init__(self, extra_path: str | None) -> None:
        """Load the detector and remember the extra file's stamp."""
        self.extra_path = extra_path
        self._stamp = self._current_stamp()
        self.detector = CrisisDetector.load(extra_path)
        self._speed = False

    def spend_memory_on_speed(self) -> None:
        """Have the model spend memory on speed, now and after each reload
        (`crisis_model.Model.spend_memory_on_speed`: the worker's choice, not the web worker's)."""
        self._speed = True
        if self.detector.model is not None:
            self.detector.model.spend_memory_on_speed()

    def _current_stamp(self) -> tuple[int, int] | None:
        if not self.extra_path:
            return None
        try:
            info = os.stat(self.extra_path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    def reload(self) -> bool:
        """Reload if the extra file changed; return whether the detector was replaced."""
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            detector = CrisisDetector.load(self.extra_path)
        except (OSError, ValueError):
            _log.warning("crisis phrases: the extra phrase file does not load; kept the last one")
            return False
        if self._speed and detector.model is not None:
            detector.model.spend_memory_on_speed()
        self.detector = detector
        return True

    def detect(self, text: str, *, after_crisis: bool = False) -> Detection:
        """Check `text` with the current phrases (see :meth:`CrisisDetector.detect`)."""
        self.reload()
        return self.detector.detect(text, after_crisis=after_crisis)

    def detect_together(self, texts: Sequence[str], *, model: bool = True) -> Detection:
        """Read a texter's texts together with the current phrases
        (:meth:`CrisisDetector.detect_together`)."""
        self.reload()
        return self.detector.detect_together(texts, model=model)

    def someone_else(self, text: str) -> bool:
        """Say whether `text` tells of someone else at risk, with the current phrases
        (:meth:`CrisisDetector.someone_else`)."""
        self.reload()
        return self.detector.someone_else(text)

    def answer(self, text: str, found: Detection) -> tuple[Detection, bool]:
        """Return what the line acts on in `text` and whether its writer is worried about
        someone else, with the current phrases (:meth:`CrisisDetector.answer`)."""
        self.reload()
        return self.detector.answer(text, found)

    @property
    def phrase_count(self) -> int:
        """How many phrase patterns the current detector compiled."""
        return self.detector.phrase_count

    @staticmethod
    def priority_of(category: str | None) -> int:
        """Return a category's place in the queue (see the module's :func:`priority_of`)."""
        return priority_of(category)
