"""A broker that goes away and comes back: the bus is shown down, then up, with no restart."""

from __future__ import annotations

import pytest

from eventhub import broker
from eventhub.bus import open_bus
from monitor.collector import Collector
from tests.monitor.support import group_row, monitor_store, produce_and_consume, wait_until  # noqa: F401

pytestmark = [pytest.mark.fault, pytest.mark.usefixtures("monitor_store")]


def _kafka(snapshot: dict) -> dict:
    return next(b for b in snapshot["buses"] if b["kind"] == "kafka")


@pytest.mark.django_db
def test_broker_down_within_two_ticks_and_back_without_restart(unique, tmp_path):
    process, bootstrap = broker.start(log_path=tmp_path / "tansu.log")
    port = int(bootstrap.rsplit(":", 1)[1])
    second = None
    collector = Collector(
        "kafka",
        bus_factory=lambda: open_bus("kafka", bootstrap_servers=bootstrap),
        heartbeat_group=unique("eventhub-hb"),
    )
    try:
        with open_bus("kafka", bootstrap_servers=bootstrap) as bus:
            produce_and_consume(bus, "orders", "billing", produced=5, consumed=2)
        up = collector.tick()
        assert _kafka(up)["up"] is True
        assert group_row(up, "billing", "orders")["lag"] == 3

        broker.stop(process)
        ticks = [collector.tick() for _ in range(2)]
        down = _kafka(ticks[-1])
        assert down["up"] is False
        assert down["error"]
        assert group_row(ticks[-1], "billing", "orders") is None  # no stale numbers

        second, _ = broker.start(port=port, log_path=tmp_path / "tansu2.log")
        with open_bus("kafka", bootstrap_servers=bootstrap) as bus:
            produce_and_consume(bus, "orders", "billing", produced=4, consumed=1)
        # The client reconnects by itself (reconnect backoff at most 1 s).
        back = wait_until(lambda: (snap := collector.tick()) and _kafka(snap)["up"] and snap, 15, "kafka up again")
        assert _kafka(back)["up"] is True and _kafka(back)["error"] is None
        assert group_row(back, "billing", "orders")["lag"] == 3
    finally:
        collector.close()
        broker.stop(process)
        if second is not None:
            broker.stop(second)
