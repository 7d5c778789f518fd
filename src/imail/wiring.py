"""Start-up wiring: what reacts to recorded events (imail.events.subscribers).

`events` sits below the domains, so it cannot call webhook fan-out or the analytics rollups itself; they
register here. Every entry point calls `install_subscribers()` before any event is recorded: the app factory
(imail.main.create_app), every worker context (imail.workers.context.WorkerContext), the CLI's database
commands, the test suite and the benchmarks. Calling it again changes nothing.
"""

from __future__ import annotations

from imail.analytics.rollups import apply_recorded
from imail.events.subscribers import subscribe
from imail.webhooks.fanout import fan_out


def install_subscribers() -> None:
    # Order kept from when events called both directly: deliveries first, then rollups.
    subscribe(fan_out)
    subscribe(apply_recorded)
