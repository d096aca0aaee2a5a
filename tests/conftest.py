"""Session-wide test hooks."""

from hypothesis import settings

# CI and a user's test run draw the same hypothesis examples every time (reproducible, as every
# other test here); `pytest --hypothesis-profile=explore --hypothesis-seed=N` searches afresh.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")


def pytest_terminal_summary(terminalreporter, config):
    # tests/test_properties.py leaves how many hypothesis cases ran, and how each ended.
    report = getattr(config, "_skebm_property_report", None)
    if report:
        terminalreporter.write_line(report)
