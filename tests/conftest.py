"""Shared pytest wiring: fixtures live in modules named for the part they stand up."""

pytest_plugins = ["tests.fixtures_lab", "tests.fixtures_redis", "tests.fixtures_slack"]
