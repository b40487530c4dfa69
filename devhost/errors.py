"""Errors the devhost engine raises to its callers (the CLI and the HTTP server)."""


class EngineError(Exception):
    """Base class of devhost engine errors."""


class UnknownFunctionError(EngineError):
    """No orchestrator (or entity) function is registered under that name."""


class InvalidInstanceIdError(EngineError, ValueError):
    """An instance id the extension refuses (DurableClient.StartNewAsync raises ArgumentException: HTTP 400)."""


class OrchestrationExistsError(EngineError):
    """An instance with that id is Pending or Running."""


class InstanceNotFoundError(EngineError):
    """No instance has that id."""


class InstanceNotRunningError(EngineError):
    """The instance exists but has finished, so it cannot receive events (the extension answers 410 Gone)."""
