"""The event log: every capability records what happened through `events.service.record_event`."""
