"""The demo shop and flow checks: a synthetic order takes the happy path whatever the dice say
(so a failing check means a broken service), and a real order still meets the demo's failures."""

from __future__ import annotations

import uuid

import pytest

from eventhub.sdk import LocalSchemas, Producer
from tests.monitor.test_simulator import SCHEMAS, _drain, _record_of_order, shop  # noqa: F401 - fixture


@pytest.mark.parametrize(
    ("synthetic", "payment", "stock"),
    [(True, b"payment.authorized", b"inventory.reserved"), (False, b"payment.failed", b"inventory.out_of_stock")],
)
def test_synthetic_orders_take_the_happy_path(shop, monkeypatch, synthetic, payment, stock):  # noqa: F811
    monkeypatch.setattr("monitor.simulator.random.random", lambda: 0.0)  # every dice throw fails
    bus = shop.buses["kafka"]
    order_id = f"o-{uuid.uuid4()}"
    order = {
        "order_id": order_id,
        "total": {"amount": 999, "currency": "EUR"},
        "lines": [{"sku": "SKU-1", "quantity": 1}],
    }
    with Producer(bus, "checks", LocalSchemas(SCHEMAS), heartbeat_interval_s=None) as producer:
        producer.publish("order.placed", order, key=order_id, synthetic=synthetic)
    for name in ("payments", "inventory"):
        _drain(next(c for c in shop.consumers if c.service == name))
    paid = _record_of_order(bus, "payments", order_id)
    reserved = _record_of_order(bus, "inventory", order_id)
    assert (paid.header("ce_type"), reserved.header("ce_type")) == (payment, stock)
    expected = b"true" if synthetic else None
    assert paid.header("x-eventhub-synthetic") == expected and reserved.header("x-eventhub-synthetic") == expected
