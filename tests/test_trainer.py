"""neuralgym.trainer.prefetch: batches made ahead in threads, in step order, the same as a
plain loop's, and a loop that stops early leaves no work behind."""

from __future__ import annotations

import threading
import time

import numpy as np

from neuralgym.trainer import prefetch


def make(step: int) -> np.ndarray:
    time.sleep(0.01 * (step % 3))  # out-of-order finishing threads must not reorder steps
    return np.random.default_rng([7, step]).integers(0, 100, 4)


def test_prefetch_yields_every_step_in_order_with_its_batch() -> None:
    got = list(prefetch(make, range(5, 17), depth=3))
    assert [s for s, _ in got] == list(range(5, 17))
    for step, batch in got:
        np.testing.assert_array_equal(batch, make(step))
    assert list(prefetch(make, range(3, 3))) == []


def test_prefetch_runs_ahead_and_stops_with_the_loop() -> None:
    made: list[int] = []
    threads: set[str] = set()

    def record(step: int) -> int:
        made.append(step)
        threads.add(threading.current_thread().name)
        return step

    for step, _ in prefetch(record, range(100), depth=2):
        if step == 4:
            time.sleep(0.05)
            assert 5 in made  # the next step's batch was made while this one ran
            break
    assert max(made) <= 6 and threading.main_thread().name not in threads
