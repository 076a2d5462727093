"""The test tiers (tests/fixtures/tiers.py) and the shared fixtures, registered for every test module.

Fixtures live in tests/fixtures/, one module per area; collecting the tests imports no framework.
"""

pytest_plugins = [
    "tests.fixtures.tiers",
    "tests.fixtures.cli",
    "tests.fixtures.action",
    "tests.fixtures.artifact_server",
    "tests.fixtures.sklearn",
    "tests.fixtures.pytorch",
    "tests.fixtures.tensorflow",
]
