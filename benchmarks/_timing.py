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


def median_over_seeds(fit, seeds, gap):
    """Fit once per seed: the median gap, its range as text, and the median wall and CPU seconds.

    ``fit(seed)`` returns a model and ``gap(model)`` the figure to summarize.
    """
    runs = [timed(lambda seed=seed: fit(seed)) for seed in seeds]
    gaps = sorted(gap(model) for _, _, model in runs)
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    return statistics.median(gaps), f"{gaps[0]:.3f} to {gaps[-1]:.3f}", wall, cpu
