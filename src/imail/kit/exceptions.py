"""Reading exception chains: a library's error often wraps the one that says what happened."""

from __future__ import annotations


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and every one it was raised from or during, outermost first (cycle-safe)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
