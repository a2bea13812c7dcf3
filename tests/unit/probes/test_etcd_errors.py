"""How a failed etcd call is named on the timeline and in fault steps: the gRPC status when the call got
one, the exception's type otherwise."""

import grpc

from chaoslab.clients.etcd import error_name, error_text


class Failed(grpc.RpcError, grpc.Call):  # what a stub raises: an RpcError that is also the call
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> None: ...
    def trailing_metadata(self) -> None: ...
    def is_active(self) -> bool: return False
    def time_remaining(self) -> None: ...
    def cancel(self) -> bool: return False
    def add_callback(self, callback: object) -> bool: return False


def test_a_call_with_a_status_is_named_by_it() -> None:
    exc = Failed(grpc.StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
    assert error_name(exc) == "DEADLINE_EXCEEDED"
    assert error_text(exc) == "DEADLINE_EXCEEDED: context deadline exceeded"
    assert error_text(Failed(grpc.StatusCode.UNAVAILABLE, "")) == "UNAVAILABLE"


def test_an_error_without_a_status_is_named_by_its_type() -> None:
    assert error_name(ValueError("closed")) == error_text(ValueError("closed")) == "ValueError"
