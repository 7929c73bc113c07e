"""docker-compose.yml cannot run here (no Docker engine); check what it declares."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_for_a_scaled_out_deployment():
    services = _compose()["services"]
    assert {"postgres", "redis", "kafka", "web", "worker", "beat"} <= set(services)
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    for name in ("postgres", "redis", "kafka", "web"):
        assert "healthcheck" in services[name], name


def test_app_services_wire_every_service_variable():
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert environment["DEBUG"] == "false"
        assert "SECRET_KEY" in environment


def test_env_example_lists_every_variable_the_settings_read():
    settings_source = (ROOT / "eventhub" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_source))
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no variables found in settings.py"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"


def test_compose_and_image_run_with_debug_off_https_on_and_a_key_from_dotenv():
    services = _compose()["services"]
    for name in ("migrate", "web", "worker", "beat", "monitor"):
        environment = services[name]["environment"]
        assert environment["DEBUG"] == "false", name
        assert environment["EVENTHUB_HTTPS"] == "true", name
        # Interpolated from .env (or the shell); `docker compose` stops when it is missing or empty.
        assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", environment["SECRET_KEY"]), name
        assert services[name]["env_file"] == ".env", name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"DEBUG\s*=\s*(true|1|yes|on)", dockerfile, re.I)
    settings_source = (ROOT / "eventhub" / "settings.py").read_text()
    development_key = re.search(r'SECRET_KEY = "([^"]+)"', settings_source)[1]
    for text in (dockerfile, (ROOT / "docker-compose.yml").read_text(), (ROOT / ".env.example").read_text()):
        assert development_key not in text
    assert re.search(r"^DEBUG=false\b", (ROOT / ".env.example").read_text(), re.M)


def test_readme_table_lists_every_variable_the_settings_read():
    settings_source = (ROOT / "eventhub" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_source))
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`([A-Z_]+)`", row.split("|")[1])}
    assert "EVENTHUB_HTTPS" in read
    assert read <= listed, f"missing from the README's table: {sorted(read - listed)}"
