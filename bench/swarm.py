"""N logged-in dashboard clients on /ws/monitor/, in one asyncio process, until SIGINT.

    python -m bench.swarm ws://127.0.0.1:PORT/ws/monitor/ --session KEY --origin http://127.0.0.1:PORT \
        --clients 100 [--watch TOPIC] --out report.json

Prints "swarm: ready" once every client has its first frame (the snapshot sent on
connect). On SIGINT or SIGTERM it closes the sockets and writes a JSON report:
per client the handshakes (`opens`), unexpected closes and errors, the arrival
time of every frame (time.monotonic(), comparable across processes on Linux)
and, with --watch, each change of that topic's end offset in the frames
[(time, end_offset)], found without decoding the whole frame.

Uses `websockets` (asyncio): one thread serves hundreds of sockets, so the
clients cost little next to the server they measure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

RECONNECT_S = 0.5
WAVE = 10


@dataclass
class Client:
    opens: int = 0
    closes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    frames: list[float] = field(default_factory=list)
    bytes: int = 0
    first_bytes: int = 0  # the first frame of the first connection: the whole view
    watch: list[tuple[float, int]] = field(default_factory=list)
    trace: list[tuple[float, float, object, object]] = field(default_factory=list)


def end_offset_in(frame: bytes, needle: bytes) -> int | None:
    """The end_offset of the topic row that `needle` (b'"name":"<topic>",') starts, if any."""
    at = frame.find(needle)
    if at < 0:
        return None
    at = frame.find(b'"end_offset":', at)
    if at < 0:
        return None
    at += len(b'"end_offset":')
    end = at
    while end < len(frame) and 48 <= frame[end] <= 57:
        end += 1
    return int(frame[at:end]) if end > at else None


async def _client(
    state: Client, args: argparse.Namespace, needle: bytes | None, first: asyncio.Event, stop: asyncio.Event
) -> None:
    headers = {"Cookie": f"sessionid={args.session}"}
    while not stop.is_set():
        try:
            async with connect(
                args.url,
                origin=args.origin,
                additional_headers=headers,
                compression=None,
                max_size=None,  # a big system's snapshot is over the 1 MiB default
                open_timeout=30,
                ping_interval=None,  # Daphne pings; no extra traffic from us
            ) as ws:
                state.opens += 1
                while True:
                    frame = await ws.recv(decode=False)
                    now = time.monotonic()
                    state.frames.append(now)
                    if len(state.frames) == 1:
                        state.first_bytes = len(frame)
                    state.bytes += len(frame)
                    first.set()
                    if state.trace is not None and args.trace and state is args.traced:
                        data = json.loads(frame)  # a whole snapshot, or a delta with "tick" and "set"
                        snap = data.get("snapshot") or {**data.get("set", {}), "tick": data.get("tick")}
                        state.trace.append((now, time.time(), snap.get("tick"), snap.get("at")))
                    if needle is not None:
                        end = end_offset_in(frame, needle)
                        if end is not None and (not state.watch or state.watch[-1][1] != end):
                            state.watch.append((now, end))
        except asyncio.CancelledError:
            return
        except ConnectionClosed as closed:
            if stop.is_set():
                return
            state.closes.append(f"{closed.rcvd.code if closed.rcvd else 'no close frame'} at {time.monotonic():.3f}")
        except Exception as error:  # noqa: BLE001 - every failure is counted, then the client reconnects
            if stop.is_set():
                return
            state.errors.append(f"{type(error).__name__}: {error}"[:300])
            if isinstance(error, InvalidStatus) and error.response.status_code == 403:
                print("swarm: refused (HTTP 403: is the session valid for this SECRET_KEY?)", flush=True)
        await asyncio.sleep(RECONNECT_S)


async def main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    needle = b'"name":' + json.dumps(args.watch).encode() + b"," if args.watch else None
    states = [Client() for _ in range(args.clients)]
    args.traced = states[0]
    firsts = [asyncio.Event() for _ in states]
    started = time.monotonic()
    tasks = []
    # Connect in waves of WAVE, each once the previous one is in: the figures are about
    # steady state, not a connection storm on a 2-core machine (Daphne refuses a socket
    # not accepted within 5 s, and the refused ones would come straight back).
    for start in range(0, len(states), WAVE):
        wave = range(start, min(start + WAVE, len(states)))
        for i in wave:
            tasks.append(asyncio.create_task(_client(states[i], args, needle, firsts[i], stop)))
        wave_in = asyncio.ensure_future(asyncio.gather(*(firsts[i].wait() for i in wave)))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([wave_in, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():
            wave_in.cancel()
            break
    waiting = asyncio.ensure_future(asyncio.gather(*(first.wait() for first in firsts)))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([waiting, stopping], return_when=asyncio.FIRST_COMPLETED)
    if waiting.done():
        print(f"swarm: ready ({args.clients} clients in {time.monotonic() - started:.1f} s)", flush=True)
    await stop.wait()
    stopped = time.monotonic()
    waiting.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    report = {
        "started": started,
        "stopped": stopped,
        "clients": [
            {
                "opens": s.opens,
                "closes": s.closes,
                "errors": s.errors,
                "frames": s.frames,
                "bytes": s.bytes,
                "first_bytes": s.first_bytes,
                "watch": s.watch,
                "trace": s.trace,
            }
            for s in states
        ],
    }
    with open(args.out, "w") as out:
        json.dump(report, out)
    print("swarm: report written", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--session", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--watch", default="")
    parser.add_argument("--out", required=True)
    parser.add_argument("--trace", action="store_true", help="the first client keeps each frame's tick and time")
    asyncio.run(main(parser.parse_args()))
