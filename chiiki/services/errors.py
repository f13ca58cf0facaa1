"""Errors services raise: a message key (translated by the UI) plus the field it belongs to."""

from __future__ import annotations


class ServiceError(Exception):
    """Bad input or a refused action. `key` names a string in chiiki.i18n; nothing was written."""

    def __init__(self, key: str, field: str = "", **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.field = field
        self.params = params


class Denied(ServiceError):
    """The policy refused. Always the same message, whatever the reason, so nothing leaks."""

    def __init__(self) -> None:
        super().__init__("error.denied")


class NotFound(ServiceError):
    def __init__(self) -> None:
        super().__init__("error.not_found")


class ValidationErrors(ServiceError):
    """Several fields at once (a form): {field: message key or ServiceError with its params}."""

    def __init__(self, errors: "dict[str, str | ServiceError]") -> None:
        self.errors: dict[str, tuple[str, dict]] = {
            f: (e.key, e.params) if isinstance(e, ServiceError) else (e, {}) for f, e in errors.items()
        }
        field, (key, params) = next(iter(self.errors.items()))
        super().__init__(key, field, **params)
