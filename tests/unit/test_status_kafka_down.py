"""`runner status` with Kafka down: the offsets behind are unknown (None), not an error or a hang."""
from __future__ import annotations

import socket

from runner.stream.status import end_offsets


def test_end_offsets_of_a_broker_that_is_not_there_is_none():
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert end_offsets({"bootstrap.servers": f"127.0.0.1:{port}"}, {"transactions"}) is None
