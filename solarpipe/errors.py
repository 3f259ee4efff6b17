"""Exceptions that carry a clear message for the analyst, and the CLI exit codes."""
from __future__ import annotations

EXIT_OK = 0
EXIT_STAGE_FAILED = 1
EXIT_BAD_INPUT = 2


class SolarpipeError(Exception):
    """Base of all solarpipe errors; the message is meant for a human."""

    exit_code = EXIT_STAGE_FAILED


class BadInputError(SolarpipeError):
    """The user's input (MS, parameter, recipe, working directory) is unusable.

    The message names the file/table/parameter and what to do about it.
    """

    exit_code = EXIT_BAD_INPUT


class RecipeError(BadInputError):
    """A recipe file is malformed or names unknown tasks/parameters."""


class ContextError(BadInputError):
    """A context file is corrupted or was written by a newer schema."""


class StageFailedError(SolarpipeError):
    """A stage ran but could not complete; the context before it is intact."""
