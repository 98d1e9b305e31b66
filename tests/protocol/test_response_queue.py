"""The client's response queue without any socket (issue 8, thin core): creates wait behind an active or
in-flight one, every error answering a create releases the next, and a cancel that raced the end is known."""

from __future__ import annotations

from typing import Any

from voicelab.protocol.response_queue import ResponseQueue


def create(event_id: str) -> dict[str, Any]:
    return {"type": "response.create", "event_id": event_id}


def test_the_first_create_goes_out_and_the_next_waits() -> None:
    queue = ResponseQueue()
    assert queue.request(create("e1"), active=False) == create("e1")
    assert queue.request(create("e2"), active=False) is None  # e1 in flight
    assert queue.pending(active=False) and queue.busy(active=False)
    queue.on_created()
    assert queue.next_to_send(active=True) is None  # e1's response is active
    queue.on_done()
    assert queue.next_to_send(active=False) == create("e2")
    assert queue.awaiting_id == "e2" and not queue.queued


def test_an_error_answering_the_create_in_flight_releases_the_next() -> None:
    queue = ResponseQueue()
    queue.request(create("e1"), active=False)
    queue.request(create("e2"), active=False)
    assert not queue.refused({"code": "invalid_value", "event_id": "other"})  # about another event
    assert queue.awaiting_created
    assert queue.refused({"code": "unknown_parameter", "event_id": "e1", "param": "response.bogus"})
    assert not queue.awaiting_created
    assert queue.next_to_send(active=False) == create("e2")


def test_errors_without_an_event_id_and_an_active_response_conflict() -> None:
    queue = ResponseQueue()
    queue.request(create("e1"), active=False)
    assert not queue.refused({"code": "server_error", "param": None})
    assert queue.refused({"code": "invalid_value", "param": "response.max_output_tokens"})
    queue.request(create("e2"), active=False)
    assert queue.refused({"code": "conversation_already_has_active_response", "event_id": None})


def test_a_failed_send_leaves_nothing_in_flight() -> None:
    queue = ResponseQueue()
    queue.request(create("e1"), active=False)
    queue.unsent()
    assert not queue.pending(active=False)
    assert queue.request(create("e2"), active=False) == create("e2")


def test_clear_drops_queued_creates_only() -> None:
    queue = ResponseQueue()
    queue.request(create("e1"), active=False)
    queue.request(create("e2"), active=False)
    queue.clear()
    assert queue.awaiting_created and not queue.queued


def test_a_cancel_that_raced_the_end_of_its_response() -> None:
    queue = ResponseQueue()
    queue.cancel_sent("c1")
    assert queue.raced_cancel({"code": "response_cancel_not_active", "event_id": "c1"})
    assert not queue.raced_cancel({"code": "response_cancel_not_active", "event_id": "c2"})
    assert not queue.raced_cancel({"code": "invalid_value", "event_id": "c1"})
