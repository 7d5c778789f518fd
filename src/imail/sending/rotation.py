"""Which inbox sends a claimed email: least recently used among the campaign's inboxes with room today and no
sending gap still running (follow-ups: the one inbox that sent step 1)."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

from imail.kit.sql import HotPathRow
from imail.models import Inbox
from imail.models.inbox import InboxStatus

EPOCH = datetime.min.replace(tzinfo=UTC)


class Shortage(Enum):
    no_inbox = "no connected inbox"
    limits_reached = "every inbox has reached today's limit"
    gap_running = "every inbox with room is waiting out its sending gap"


@dataclass(frozen=True)
class NoInbox:
    shortage: Shortage
    ready_at: datetime | None = None  # gap_running: when to look at this send again (Bookings)


@dataclass
class Bookings:
    """When the claims of one worker process have told a group's waiting sends to come back, kept from claim
    to claim. A send that finds every inbox of its group inside its gap gets the earliest inbox opening not
    yet promised to another send, or, when each has one, the group's next slot after the last one promised
    (its inboxes' combined pace, the gaps without their jitter). Telling every waiting send "at the earliest
    opening" would bring a campaign's whole backlog back at each opening, one send going out and the rest
    read, locked and written back again: with a thousand inboxes at their gap, more rows than a claim loop can
    turn, and sends falling behind their due time. Another worker process promises the same openings again:
    at worst as many sends per opening as there are processes."""

    promised: dict[tuple[str, bool], set[tuple[str, datetime]]] = field(default_factory=dict)
    last_slot: dict[tuple[str, bool], datetime] = field(default_factory=dict)

    def forget_before(self, now: datetime) -> None:
        for key in [k for k, slot in self.last_slot.items() if slot < now]:
            del self.last_slot[key]
        for key in list(self.promised):
            kept = {opening for opening in self.promised[key] if opening[1] >= now}
            if kept:
                self.promised[key] = kept
            else:
                del self.promised[key]

    def book(self, key: tuple[str, bool], openings: list[tuple[datetime, str]], pace: timedelta) -> datetime:
        """When a waiting send of group `key` comes back, given its inboxes' next openings (time, inbox id)
        and the time between two of the group's sends."""
        promised = self.promised.setdefault(key, set())
        for when, inbox_id in sorted(openings):
            if (inbox_id, when) not in promised:
                promised.add((inbox_id, when))
                return when
        slot = max(self.last_slot.get(key, EPOCH), max(when for when, _ in openings)) + pace
        self.last_slot[key] = slot
        return slot


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
        counters: Mapping[str, HotPathRow],
        pacing: Mapping[str, HotPathRow],
        limits: Mapping[str, int],
        bookings: Bookings | None = None,
    ):
        self.now = now
        self.inboxes = inboxes
        self.counters = counters
        self.pacing = pacing
        self.limits = limits
        self.bookings = bookings if bookings is not None else Bookings()
        self.bookings.forget_before(now)
        self._usable: dict[tuple[str, bool], list[Inbox]] = {}
        self._heaps: dict[tuple[str, bool], list[tuple[datetime, int, str]]] = {}
        # The groups found waiting out their gaps, with their openings and pace (the claim's clock stands
        # still, so they wait for the rest of the claim).
        self._waiting: dict[tuple[str, bool], tuple[list[tuple[datetime, str]], timedelta]] = {}

    def count(self, group: str, inbox_ids: Sequence[str], livemode: bool) -> tuple[int, int]:
        """How many sends the group's inboxes could take now (one per inbox with a gap, all of today's room
        without), and how many of its inboxes have room today."""
        usable = self._usable_of(group, inbox_ids, livemode)
        with_room = [i for i in usable if self._has_room(i.id)]
        now = sum(1 if i.sending_gap_minutes else self._room(i.id) for i in with_room if self._is_ready(i.id))
        return now, len(with_room)

    def _usable_of(self, group: str, inbox_ids: Sequence[str], livemode: bool) -> list[Inbox]:
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
        return usable

    def choose(self, group: str, inbox_ids: Sequence[str], livemode: bool) -> Inbox | NoInbox:
        """The inbox for the next send of `group` (the ids are read once per group and claim)."""
        key = (group, livemode)
        usable = self._usable_of(group, inbox_ids, livemode)
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
        with_room = [i for i in usable if self._has_room(i.id)]
        if not with_room:
            return NoInbox(Shortage.limits_reached)
        self._waiting[key] = ([(self._ready_at(i.id) or self.now, i.id) for i in with_room], _pace(with_room))
        return NoInbox(Shortage.gap_running, self.book(group, livemode))

    def book(self, group: str, livemode: bool) -> datetime:
        """When another send of a group found waiting out its gaps in this claim comes back (Bookings)."""
        openings, pace = self._waiting[(group, livemode)]
        return self.bookings.book((group, livemode), openings, pace)

    def waiting(self) -> set[tuple[str, bool]]:
        """The groups (and modes) found waiting out their gaps in this claim."""
        return set(self._waiting)

    def sent(self, inbox: Inbox, gap_until: datetime) -> None:
        """A send planned from `inbox` now; it may send again from `gap_until`."""
        self.counters[inbox.id].sent += 1
        pacing = self.pacing[inbox.id]
        pacing.last_sent_at = self.now
        pacing.next_send_at = gap_until

    def _key(self, inbox_id: str) -> tuple[datetime, int, str]:
        # Sends planned in one claim share a timestamp, so today's count breaks that tie.
        return (self.pacing[inbox_id].last_sent_at or EPOCH, self.counters[inbox_id].sent, inbox_id)

    def _room(self, inbox_id: str) -> int:
        return self.limits.get(inbox_id, self.inboxes[inbox_id].daily_limit) - self.counters[inbox_id].sent

    def _has_room(self, inbox_id: str) -> bool:
        return self._room(inbox_id) > 0

    def _ready_at(self, inbox_id: str) -> datetime | None:
        """When the inbox may send: after its sending gap, and after any backoff its server asked for (a
        421)."""
        times = [self.pacing[inbox_id].next_send_at, self.inboxes[inbox_id].send_backoff_until]
        return max((t for t in times if t is not None), default=None)

    def _is_ready(self, inbox_id: str) -> bool:
        ready_at = self._ready_at(inbox_id)
        return ready_at is None or ready_at <= self.now


def _pace(inboxes: Sequence[Inbox]) -> timedelta:
    """The time between two sends of a group of inboxes each sending once per gap (its jitter left out, so a
    slot is never later than the send could go)."""
    gaps = [inbox.sending_gap_minutes for inbox in inboxes]
    if not all(gaps):
        return timedelta(0)
    return timedelta(minutes=1 / sum(1 / gap for gap in gaps))
