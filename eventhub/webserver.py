"""Daphne with permessage-deflate: `python -m eventhub.webserver` takes Daphne's arguments.

A browser offering permessage-deflate (RFC 7692; every current one does) gets its
websocket frames compressed; a client that does not offer it gets them as before. The
monitor's frames are JSON rows that repeat their keys: a 48 KiB delta goes out as
about 4 KiB, the 2 MiB whole view of a large cluster as a tenth of that or less
(docs/performance.md, `ws_steady_bytes_per_tick`).

Daphne 4.2 does not expose its autobahn factory's compression options, so the factory
class it builds is replaced by one that sets them; Daphne then sets its own (timeouts,
frame and message sizes) on top. Per socket, a small window (4 KiB) and memory level
keep the compressor at about 32 KiB instead of 256 KiB, with the same ratio on these
frames. Inflating what a client sends is capped at MAX_INFLATED_BYTES per message: a
small compressed frame cannot make the server hold megabytes (the sockets refuse frames
over 4 KiB anyway, eventhub/sockets.py).
"""

from __future__ import annotations

import daphne.server
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketFactory

WINDOW_BITS = 12
MEM_LEVEL = 5
MAX_INFLATED_BYTES = 1024 * 1024


def accept_deflate(offers: list) -> PerMessageDeflateOfferAccept | None:
    """The first permessage-deflate offer of a handshake, accepted; None: no compression."""
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(
                offer, window_bits=WINDOW_BITS, mem_level=MEM_LEVEL, max_message_size=MAX_INFLATED_BYTES
            )
    return None


class DeflatingWebSocketFactory(WebSocketFactory):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setProtocolOptions(perMessageCompressionAccept=accept_deflate)


def main() -> None:
    daphne.server.WebSocketFactory = DeflatingWebSocketFactory
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
