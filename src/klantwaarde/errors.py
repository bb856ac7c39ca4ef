"""Errors that the command line turns into exit codes: 2 for bad input or configuration."""

from __future__ import annotations


class InputError(Exception):
    """Invalid input data, source or configuration: exit code 2, a message and no traceback."""


class ConfigError(InputError):
    """A configuration file that does not match its schema."""

