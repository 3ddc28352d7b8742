"""The pytest plugin (localbox.testing.pytest_plugin), tested the way its users run it: pytester runs
test files in a fresh pytest process, where the plugin loads from its `pytest11` entry point."""

pytest_plugins = ["pytester"]
