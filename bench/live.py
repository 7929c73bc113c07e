"""Real EventHub processes for the live figures and the load test (Django-free).

- `Process`: a subprocess in its own process group with a log file; `stop()`
  ends the whole group (SIGTERM, then SIGKILL after a grace period).
- `start_daphne`: Daphne serving eventhub.asgi on a free port, ready once
  /healthz answers 200.
- `start_monitor`: `manage.py run_monitor --no-ingester`, the collector loops.
- `start_swarm`: `python -m bench.swarm`, N websocket clients in a process of
  their own (so their frame handling does not share a GIL with what is timed).
- `rss_kb`: a process's resident set, read from /proc/<pid>/status.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import wait_until
from eventhub.broker import free_port
from eventhub.launcher import web_command

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM the group, SIGKILL what is left after `grace_s`; returns the exit code."""
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        return self.popen.returncode


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Process:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() reaches its children
        )
    return Process(name, popen, log_path)


def django_env(db_path: Path, redis_url: str, bootstrap: str, **extra: str) -> dict[str, str]:
    """The environment of an EventHub subprocess: this SQLite file, this Redis, this broker."""
    env = dict(os.environ)
    env.pop("EVENTHUB_RUN_LOOPS", None)
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        EVENTHUB_VAR_DIR=str(db_path.parent / "var"),
        DJANGO_SETTINGS_MODULE="eventhub.settings",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        REDIS_URL=redis_url,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        EVENTHUB_CHANNEL_LAYER="redis",
        EVENTHUB_WORKERS="inprocess",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


# --------------------------------------------------------------------------- Daphne
@dataclass
class Daphne:
    url: str
    process: Process

    def socket_url(self, path: str = "/ws/monitor/?groups_page=0") -> str:
        """The dashboard's socket by default, as the page opens it: on the groups table's first page."""
        return self.url.replace("http://", "ws://") + path

    def status(self, path: str, timeout_s: float = 2.0) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


def start_daphne(env: dict[str, str], log_dir: Path, name: str = "daphne", timeout_s: float = 60) -> Daphne:
    port = free_port()
    # As `make run` and the Dockerfile start it (a whole large snapshot is over 1 MiB).
    argv = web_command("127.0.0.1", port)
    daphne = Daphne(f"http://127.0.0.1:{port}", spawn(name, argv, env, log_dir))

    def healthy() -> bool:
        if not daphne.process.alive():
            raise RuntimeError(f"daphne exited {daphne.process.popen.returncode}:\n{daphne.process.log()[-3000:]}")
        try:
            return daphne.status("/healthz") == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    try:
        wait_until(healthy, timeout_s, f"daphne on port {port} to answer /healthz", every_s=0.1)
    except BaseException:
        daphne.process.stop()
        raise
    return daphne


def start_monitor(env: dict[str, str], log_dir: Path) -> Process:
    """The collector loops (run_monitor --no-ingester); ready once it says it runs."""
    process = spawn("run_monitor", [PYTHON, "manage.py", "run_monitor", "--no-ingester"], env, log_dir)

    def running() -> bool:
        if not process.alive():
            raise RuntimeError(f"run_monitor exited {process.popen.returncode}:\n{process.log()[-3000:]}")
        return "run_monitor: running" in process.log()

    try:
        wait_until(running, 60, "run_monitor to start", every_s=0.1)
    except BaseException:
        process.stop()
        raise
    return process


# --------------------------------------------------------------------------- the client swarm
@dataclass
class Swarm:
    """`python -m bench.swarm` in a subprocess; `finish()` stops it and returns its report."""

    process: Process
    out: Path

    def ready(self) -> bool:
        if not self.process.alive():
            raise RuntimeError(f"swarm exited {self.process.popen.returncode}:\n{self.process.log()[-3000:]}")
        log = self.process.log()
        if "swarm: refused" in log:
            raise RuntimeError("the server refused the swarm's sockets (HTTP 403): the session is not valid there")
        return "swarm: ready" in log

    def finish(self, timeout_s: float = 60) -> dict[str, Any]:
        self.process._signal(signal.SIGINT)  # the swarm writes its report and exits
        try:
            self.process.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.stop()
            raise RuntimeError(f"swarm did not finish:\n{self.process.log()[-3000:]}") from None
        if not self.out.exists():
            raise RuntimeError(f"swarm wrote no report:\n{self.process.log()[-3000:]}")
        return json.loads(self.out.read_text())


def start_swarm(
    url: str, session_key: str, origin: str, clients: int, log_dir: Path, watch: str = "", timeout_s: float = 120
) -> Swarm:
    """N logged-in /ws/monitor/ clients; returns once each has its first frame."""
    out = log_dir / f"swarm-{clients}-{time.monotonic_ns()}.json"
    argv = [PYTHON, "-m", "bench.swarm", url, "--session", session_key, "--origin", origin]
    argv += ["--clients", str(clients), "--out", str(out)]
    if watch:
        argv += ["--watch", watch]
    if os.environ.get("BENCH_TRACE"):
        argv += ["--trace"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    swarm = Swarm(spawn(f"swarm-{clients}", argv, env, log_dir), out)
    try:
        wait_until(swarm.ready, timeout_s, f"{clients} websocket clients to connect", every_s=0.1)
    except BaseException:
        swarm.process.stop()
        raise
    return swarm


# --------------------------------------------------------------------------- memory
def rss_kb(pid: int) -> int:
    """Resident set size of `pid` in KiB (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds `pid` has used (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
