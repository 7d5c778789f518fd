"""Which inbox sends a claimed email: least recently used among the campaign's inboxes with room today and no
sending gap still running (follow-ups: the one inbox that sent step 1)."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from imail.models import Inbox
from imail.models.inbox import InboxStatus
from imail.models.sending import InboxPacing, SendCounter

EPOCH = datetime.min.replace(tzinfo=UTC)


class Shortage(Enum):
    no_inbox = "no connected inbox"
    limits_reached = "every inbox has reached today's limit"
    gap_running = "every inbox with room is waiting out its sending gap"


@dataclass(frozen=True)
class NoInbox:
    shortage: Shortage
    ready_at: datetime | None = None  # gap_running: when the first inbox may send again


class Rotation:
    """One claim's view of its inboxes: today's counters and the pacing rows the claim has locked, changed by
    each send it plans. Each group of candidates (a campaign's inboxes, or a thread's one inbox) is a heap
    keyed (last send, sends today, id), so a pick costs O(log n) however many inboxes the campaign has. A
    planned send only raises its inbox's key, so an entry made stale by a send from elsewhere (a follow-up) is
    re-keyed when it reaches the top; an inbox that lost its room or started a gap stays out for the rest of
    the claim, as the claim's clock does not move."""

    def __init__(
        self,
        now: datetime,
        inboxes: Mapping[str, Inbox],
        counters: Mapping[str, SendCounter],
        pacing: Mapping[str, InboxPacing],
        limits: Mapping[str, int],
    ):
        self.now = now
        self.inboxes = inboxes
        self.counters = counters
        self.pacing = pacing
        self.limits = limits
        self._usable: dict[tuple[str, bool], list[Inbox]] = {}
        self._heaps: dict[tuple[str, bool], list[tuple[datetime, int, str]]] = {}

    def choose(self, group: str, inbox_ids: Sequence[str], livemode: bool) -> Inbox | NoInbox:
        """The inbox for the next send of `group` (the ids are read once per group and claim)."""
        key = (group, livemode)
        usable = self._usable.get(key)
        if usable is None:
            usable = self._usable[key] = [
                self.inboxes[i]
                for i in inbox_ids
                if i in self.inboxes
                and self.inboxes[i].status == InboxStatus.connected.value
                and self.inboxes[i].sending_paused_at is None  # bounce protection, SMTP policy, by hand
                and self.inboxes[i].livemode == livemode
            ]
            heap = self._heaps[key] = [self._key(i.id) for i in usable]
            heapq.heapify(heap)
        if not usable:
            return NoInbox(Shortage.no_inbox)
        heap = self._heaps[key]
        while heap:
            inbox_id = heap[0][2]
            if not (self._has_room(inbox_id) and self._is_ready(inbox_id)):
                heapq.heappop(heap)
                continue
            current = self._key(inbox_id)
            if current != heap[0]:
                heapq.heapreplace(heap, current)
                continue
            return self.inboxes[inbox_id]
        with_room = [i.id for i in usable if self._has_room(i.id)]
        if not with_room:
            return NoInbox(Shortage.limits_reached)
        return NoInbox(Shortage.gap_running, min(self._ready_at(i) or self.now for i in with_room))

    def sent(self, inbox: Inbox, gap_until: datetime) -> None:
        """A send planned from `inbox` now; it may send again from `gap_until`."""
        self.counters[inbox.id].sent += 1
        pacing = self.pacing[inbox.id]
        pacing.last_sent_at = self.now
        pacing.next_send_at = gap_until

    def _key(self, inbox_id: str) -> tuple[datetime, int, str]:
        # Sends planned in one claim share a timestamp, so today's count breaks that tie.
        return (self.pacing[inbox_id].last_sent_at or EPOCH, self.counters[inbox_id].sent, inbox_id)

    def _has_room(self, inbox_id: str) -> bool:
        return self.counters[inbox_id].sent < self.limits.get(inbox_id, self.inboxes[inbox_id].daily_limit)

    def _ready_at(self, inbox_id: str) -> datetime | None:
        """When the inbox may send: after its sending gap, and after any backoff its server asked for (a
        421)."""
        times = [self.pacing[inbox_id].next_send_at, self.inboxes[inbox_id].send_backoff_until]
        return max((t for t in times if t is not None), default=None)

    def _is_ready(self, inbox_id: str) -> bool:
        ready_at = self._ready_at(inbox_id)
        return ready_at is None or ready_at <= self.now
