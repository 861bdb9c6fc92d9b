"""Shared pytest wiring: fixtures live in modules named for the part they stand up."""

pytest_plugins = ["tests.support.fixtures_lab", "tests.support.fixtures_redis", "tests.support.fixtures_slack",
                  "tests.support.redis_server"]
