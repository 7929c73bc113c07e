"""Kafka protocol messages that kafka-python 3.0.12 does not define, as message definitions.

kafka-python builds each request and response class from a JSON definition in the
format of Apache Kafka's own message specs (`ApiMessage` with `load_json=` this
package). Only what EventHub sends is here:

- ConsumerGroupDescribe (API 69, version 0, KIP-848): on Kafka 4 a group of type
  `consumer` (the new protocol, the Java client's `group.protocol=consumer`) is
  invisible to DescribeGroups ("not a classic group"); this is how its state,
  members and assignment are read.
"""
