"""The tfrelay release version (read by pyproject.toml and `tfrelay --version`)."""

__version__ = "0.1.0"
