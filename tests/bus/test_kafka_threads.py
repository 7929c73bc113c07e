"""The Kafka adapter's admin calls are safe from several threads at once."""

import threading

from eventhub.bus import open_bus


def test_concurrent_admin_calls_from_threads(kafka_bootstrap, unique):
    bus = open_bus("kafka", bootstrap_servers=kafka_bootstrap)
    topics = [unique("threads") for _ in range(6)]
    for topic in topics:
        bus.create_topic(topic, partitions=2)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(topics))

    def work(topic: str) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                bus.end_offsets(topic)
                bus.publish(topic, b"x")  # a topic this adapter looks up for the first time
                bus.list_topics()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(topic,)) for topic in topics]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert all(sum(bus.end_offsets(topic).values()) == 5 for topic in topics)
    finally:
        for topic in topics:
            bus.delete_topic(topic)
        bus.close()
