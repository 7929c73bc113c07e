"""Live updates reach the dead-letter pages from whichever thread changed something.

`make run` without Redis uses the in-memory channel layer, whose queues belong to the
server's event loop; the ingester and redrive jobs run in plain threads. A send from
such a thread must still wake the open sockets (eventhub.sockets.send_to_group).
"""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import connection

from deadletters.ingest import Ingester
from deadletters.models import DeadLetter
from eventhub.sdk import headers as h

MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _ingest_in_a_thread(ingester: Ingester) -> threading.Thread:
    """Run the ingester in a plain thread (as the background loop does) until it stored one."""

    def run() -> None:
        try:
            for _ in range(30):
                if ingester.step(timeout_s=0.5):
                    return
        finally:
            ingester.close()
            connection.close()

    thread = threading.Thread(target=run, name="ingester", daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_dead_letter_ingested_in_a_background_thread_reaches_an_open_socket(
    settings, client, django_user_model, redis, unique
):
    from eventhub.asgi import application

    settings.CHANNEL_LAYERS = MEMORY_LAYER
    client.force_login(django_user_model.objects.create_user("olga", password="pw"))
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    dead_letter_topic = h.dead_letter_topic(unique("orders"), "redis")
    redis.create_topic(dead_letter_topic)
    redis.publish(dead_letter_topic, b'{"order_id": 1}', headers=[(h.ERROR_CLASS, b"ValueError")])
    ingester = Ingester(["redis"], buses={"redis": redis}, group=unique("ingester"), patterns=[dead_letter_topic])

    async def scenario() -> dict:
        headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", cookie.encode())]
        socket = WebsocketCommunicator(application, "/ws/dead-letters/", headers=headers)
        connected, _ = await socket.connect(timeout=5)
        assert connected
        thread = _ingest_in_a_thread(ingester)
        try:
            return await socket.receive_json_from(timeout=20)
        finally:
            await sync_to_async(thread.join)(20)
            await socket.disconnect()

    frame = async_to_sync(scenario)()

    stored = DeadLetter.objects.get(dlq_topic=dead_letter_topic)
    assert frame == {"type": "deadletters.new", "ids": [stored.pk], "count": 1}
    assert stored.error_class == "ValueError"
