import asyncio

import pytest

from imail.kit.coalesce import Coalescer


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: str | None = None):
        self.batches: list[list[str]] = []
        self.delay = delay
        self.fail_on = fail_on

    async def __call__(self, keys: list[str]) -> dict[str, str]:
        self.batches.append(keys)
        await asyncio.sleep(self.delay)
        if self.fail_on in keys:
            raise RuntimeError(f"batch with {self.fail_on} failed")
        return {key: key.upper() for key in keys if key != "missing"}


async def test_calls_made_together_share_one_batch():
    handle = Recorder()
    coalescer = Coalescer(handle)
    keys = [f"k{i}" for i in range(50)]
    assert await asyncio.gather(*(coalescer(k) for k in keys)) == [k.upper() for k in keys]
    assert handle.batches == [keys]


async def test_calls_made_while_a_batch_is_out_go_in_the_next():
    handle = Recorder(delay=0.05)
    coalescer = Coalescer(handle)
    first = asyncio.create_task(coalescer("a"))
    await asyncio.sleep(0.01)  # "a" is being handled
    later = [asyncio.create_task(coalescer(k)) for k in ("b", "c")]
    assert await first == "A" and [await t for t in later] == ["B", "C"]
    assert handle.batches == [["a"], ["b", "c"]]
    # Once idle, a new call starts a new batch.
    assert await coalescer("d") == "D" and handle.batches[-1] == ["d"]


async def test_a_failed_batch_fails_its_callers_only():
    handle = Recorder(delay=0.02, fail_on="bad")
    coalescer = Coalescer(handle)
    failing = [asyncio.create_task(coalescer(k)) for k in ("bad", "x")]
    await asyncio.sleep(0.005)
    fine = asyncio.create_task(coalescer("y"))
    for task in failing:
        with pytest.raises(RuntimeError, match="bad failed"):
            await task
    assert await fine == "Y"


async def test_a_key_the_handler_did_not_answer_is_a_key_error():
    coalescer = Coalescer(Recorder())
    results = await asyncio.gather(coalescer("missing"), coalescer("z"), return_exceptions=True)
    assert isinstance(results[0], KeyError) and results[1] == "Z"


async def test_the_same_key_twice_in_one_batch_is_refused():
    coalescer = Coalescer(Recorder(delay=0.01))
    results = await asyncio.gather(coalescer("a"), coalescer("a"), return_exceptions=True)
    assert results[0] == "A" and isinstance(results[1], ValueError)


async def test_a_cancelled_caller_leaves_the_others_their_answer():
    handle = Recorder(delay=0.02)
    coalescer = Coalescer(handle)
    gone = asyncio.create_task(coalescer("gone"))
    kept = asyncio.create_task(coalescer("kept"))
    await asyncio.sleep(0.005)
    gone.cancel()
    assert await kept == "KEPT"
    assert gone.cancelled()


async def test_callers_are_not_left_waiting_when_the_batch_runner_is_cancelled():
    coalescer = Coalescer(Recorder(delay=10))
    waiting = asyncio.create_task(coalescer("a"))
    await asyncio.sleep(0.01)
    coalescer._runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 1)


async def _batch_under_way(coalescer: Coalescer) -> None:
    """Return once the batch runner has started on what was asked so far (event-loop turns, not seconds)."""
    while coalescer._runner is None:
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # the runner's first step: lingering, or already handling its batch


async def test_a_lingering_batch_takes_calls_made_a_moment_apart():
    handle = Recorder()
    coalescer = Coalescer(handle, linger=0.05)
    first = asyncio.create_task(coalescer("a"))
    await _batch_under_way(coalescer)  # "a" lingers: "b" joins it
    second = asyncio.create_task(coalescer("b"))
    assert [await first, await second] == ["A", "B"]
    assert handle.batches == [["a", "b"]]
    # Without a linger, the same timing makes two batches.
    eager = Recorder()
    coalescer = Coalescer(eager)
    first = asyncio.create_task(coalescer("a"))
    await _batch_under_way(coalescer)
    assert await coalescer("b") == "B" and await first == "A"
    assert eager.batches == [["a"], ["b"]]
