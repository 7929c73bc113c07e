"""`make run`: from a fresh clone to a working app, under one supervisor (honcho).

1. DEBUG=true for every process, unless DEBUG is set (settings default to false).
2. Ask Redis whether it answers at REDIS_URL. When it does not and REDIS_URL was
   not given, run a private redis-server (no persistence) on EVENTHUB_REDIS_PORT
   (default 16379) when one is installed (`make run` installs it as root). With
   Redis: Celery worker + beat, Redis channel layer. Without: say so in one line,
   use the in-memory channel layer and run the background loops inside the web process.
3. Unless KAFKA_BOOTSTRAP_SERVERS is set, run the embedded broker (Tansu) on
   EVENTHUB_BROKER_PORT (default 19092).
4. Migrate, create the demo admin when there is none, seed the demo world when
   the catalog is empty.
5. Write <EVENTHUB_VAR_DIR>/Procfile and hand over to honcho: Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# A large system's monitor snapshot passes Daphne's default 1 MiB websocket message cap,
# and every dashboard socket would be closed on every tick.
DAPHNE_OPTIONS = "--websocket-max-message-size 16777216 --websocket-max-frame-size 16777216"
PYTHON = sys.executable


def web_command(host: str, port: int, options: str = DAPHNE_OPTIONS) -> list[str]:
    """The web process: Daphne with permessage-deflate (eventhub/webserver.py) and `options`."""
    return [
        PYTHON,
        "-m",
        "eventhub.webserver",
        *shlex.split(options),
        "-b",
        host,
        "-p",
        str(int(port)),
        "eventhub.asgi:application",
    ]


def _redis_answers(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return True
    except (redis.RedisError, ValueError):
        return False


def without_credentials(url: str) -> str:
    """The URL as it may be printed: a password in it (redis://:secret@host) stays out of logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _manage(*args: str, env: dict) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _has_command(name: str) -> bool:
    return any(
        (ROOT / app / "management" / "commands" / f"{name}.py").exists()
        for app in ("eventhub", "designer", "monitor", "eventstore")
    )


def development_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of every process `make run` starts: DEBUG on unless the user chose.

    DEBUG is off by default everywhere else (eventhub/settings.py): `make run` is the
    one place a development machine is known to be the target.
    """
    env = dict(environ)
    env.setdefault("DEBUG", "true")
    return env


def main() -> None:
    env = development_env(os.environ)
    host = env.get("HOST", "127.0.0.1")
    port = env.get("PORT", "8000")
    redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    var = ROOT / env.get("EVENTHUB_VAR_DIR", "var")
    var.mkdir(parents=True, exist_ok=True)

    processes: dict[str, str] = {}
    with_redis = _redis_answers(redis_url)
    if not with_redis and "REDIS_URL" not in os.environ and shutil.which("redis-server"):
        from eventhub import broker

        redis_port = int(env.get("EVENTHUB_REDIS_PORT", "16379"))
        if broker.port_in_use("127.0.0.1", redis_port):
            sys.exit(
                f"eventhub: port {redis_port} for the private Redis is taken. Set EVENTHUB_REDIS_PORT or REDIS_URL."
            )
        redis_url = env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        processes["redis"] = f"redis-server --port {redis_port} --bind 127.0.0.1 --save '' --appendonly no"
        with_redis = True
    if with_redis:
        env.setdefault("EVENTHUB_CHANNEL_LAYER", "redis")
        env.setdefault("EVENTHUB_WORKERS", "celery")
    else:
        print(
            f"eventhub: Redis does not answer at {without_credentials(redis_url)}: running without it "
            "(in-memory channel layer, background loops inside the web process)."
        )
        env["EVENTHUB_CHANNEL_LAYER"] = "memory"
        env["EVENTHUB_WORKERS"] = "inprocess"
        env["EVENTHUB_REDIS_REQUIRED"] = "false"

    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        from eventhub import broker

        broker_port = int(env.get("EVENTHUB_BROKER_PORT", "19092"))
        if broker.port_in_use("127.0.0.1", broker_port):
            sys.exit(
                f"eventhub: port {broker_port} for the embedded broker is taken. Set "
                "EVENTHUB_BROKER_PORT to a free port, or KAFKA_BOOTSTRAP_SERVERS to use your Kafka."
            )
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{broker_port}"
        processes["broker"] = f"{PYTHON} -m eventhub.broker --port {broker_port}"

    _manage("migrate", "--no-input", "-v", "0", env=env)
    _manage("ensure_admin", env=env)
    if _has_command("seed_demo") and env.get("EVENTHUB_DEMO", "true").lower() not in ("0", "false", "no"):
        _manage("seed_demo", "--if-empty", env=env)

    web = shlex.join(web_command(host, port))
    if with_redis:
        processes["web"] = web
        processes["worker"] = (
            f"{PYTHON} -m celery -A eventhub.celery worker -l warning -Q eventhub,redrive --concurrency 2"
        )
        processes["beat"] = (
            f"{PYTHON} -m celery -A eventhub.celery beat -l warning -s {shlex.quote(str(var / 'celerybeat-schedule'))}"
        )
        if _has_command("run_monitor"):
            processes["monitor"] = f"{PYTHON} manage.py run_monitor"
        if _has_command("run_indexer"):
            processes["indexer"] = f"{PYTHON} manage.py run_indexer"
    else:
        processes["web"] = f"env EVENTHUB_RUN_LOOPS=1 {web}"
    if _has_command("simulate") and env.get("EVENTHUB_DEMO", "true").lower() not in ("0", "false", "no"):
        processes["simulator"] = f"{PYTHON} manage.py simulate"

    procfile = var / "Procfile"
    procfile.write_text("".join(f"{name}: {cmd}\n" for name, cmd in processes.items()))
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(
        f"\n  EventHub starts at http://{shown_host}:{port}/  "
        "(Ctrl-C stops everything)\n"
        f"  Open first: http://{shown_host}:{port}/monitor/ (live bus), then /designer/ and /dead-letters/\n"
    )
    sys.stdout.flush()
    os.chdir(ROOT)
    honcho = [PYTHON, "-m", "honcho", "-f", str(procfile), "start"]
    os.execvpe(honcho[0], honcho, env)


if __name__ == "__main__":
    main()
