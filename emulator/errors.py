"""Typed service errors carrying AWS's exact codes, HTTP statuses and wording.

Providers raise these; the protocol layer turns them into the wire error of the operation's
protocol (json 1.1 `__type`, rest-json `X-Amzn-ErrorType`). A caller's mistake is never a 500.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error that reaches the caller as AWS would send it."""

    def __init__(self, code: str, message: str, status: int = 400, **fields):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields  # extra members of the error shape (e.g. OriginalStatusCode)


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def in_use(message: str) -> ServiceError:
    return ServiceError("ResourceInUse", message)


def limit_exceeded(message: str) -> ServiceError:
    return ServiceError("ResourceLimitExceeded", message)


def serialization(message: str) -> ServiceError:
    return ServiceError("SerializationException", message)


def unknown_operation(message: str) -> ServiceError:
    return ServiceError("UnknownOperationException", message)


def not_implemented(operation: str, service: str = "SageMaker") -> ServiceError:
    return ServiceError(
        "NotImplementedException",
        f"smlocal does not implement {service} operation {operation} yet.",
        status=501,
    )


def internal(message: str = "An internal error occurred.") -> ServiceError:
    return ServiceError("InternalFailure", message, status=500)
