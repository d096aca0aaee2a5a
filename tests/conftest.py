"""Session-wide test hooks."""


def pytest_terminal_summary(terminalreporter, config):
    # tests/test_properties.py leaves how many hypothesis cases ran, and how each ended.
    report = getattr(config, "_skebm_property_report", None)
    if report:
        terminalreporter.write_line(report)
