"""eventhub.sdk.cloudevents.content_mode: which CloudEvents content mode a record's headers say.

No broker: the function reads headers only. The indexer asks it of every record it reads.
"""

from __future__ import annotations

import pytest

from eventhub.sdk.cloudevents import BINARY, STRUCTURED, content_mode


@pytest.mark.parametrize(
    ("headers", "mode"),
    [
        (None, BINARY),
        ([], BINARY),
        ([("ce_id", b"1"), ("content-type", b"application/json")], BINARY),
        ([("content-type", b"application/cloudevents+json")], STRUCTURED),
        ([("Content-Type", b"Application/CloudEvents+JSON; charset=utf-8")], STRUCTURED),
        ({"content-type": "application/cloudevents+json"}, STRUCTURED),  # a mapping, text values
        ([("content-type", bytearray(b"application/cloudevents+json"))], STRUCTURED),
        # The last content-type counts, as Record.header picks it.
        ([("content-type", b"application/cloudevents+json"), ("content-type", b"application/json")], BINARY),
        ([("content-type", b"application/json"), ("CONTENT-TYPE", b"application/cloudevents+json")], STRUCTURED),
        ([("content-type", b"application/cloudevents+json"), ("content-type", None)], BINARY),
        ([("content-type", b"\xff\xfeapplication/cloudevents+json")], BINARY),  # not UTF-8: replaced, no match
        ([("x-content-type", b"application/cloudevents+json")], BINARY),
    ],
)
def test_the_content_type_header_picks_the_mode(headers, mode):
    assert content_mode(headers) == mode
