"""What every benchmark shares: medians of wall and CPU time."""

import statistics
import time


def timed(fn, repeats=1):
    """Median wall and CPU seconds of ``repeats`` calls, and the last result."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result
