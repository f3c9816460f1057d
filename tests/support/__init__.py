"""Helpers shared by the tests: paths, fixture models, and servers started on loopback."""
