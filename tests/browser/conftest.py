"""The shared browser-test harness: a live EventHub under Daphne, and real Chromium.

Browser tests drive the app a user would run: Daphne in a subprocess (HTTP and
websockets), a fresh SQLite file, the real broker and Redis of the test run
(REDIS_URL / KAFKA_BOOTSTRAP_SERVERS, exported by tests.services), and Debian's
Chromium through Playwright's sync API. They never touch the pytest-django test
database: set data up through the UI, the API, or `live_app.manage()/shell()`.

Writing one:

    import pytest

    pytestmark = pytest.mark.browser          # every browser test carries the mark

    def test_viewer_reads(live_app, page_as):
        live_app.manage("seed_demo")           # management commands on the app's DB
        page = page_as("viewer")               # logged in through the real login form
        page.goto("/designer/")                # relative to live_app.url
        expect(page.locator("h1")).to_have_text("Designer")

Fixtures:
- `live_app` (session): the shared app. `.url`, `.env`, `.db_path`, `.log_path`,
  `.users` ({role: (username, password)}), `.manage(*args, check=True)` ->
  CompletedProcess, `.shell(code)` -> CompletedProcess (`manage.py shell -c`),
  `.log_text()`, `.restart()` (same port and database: for reconnect tests).
  Roles: "admin" (superuser), "designer", "operator", "viewer".
- `make_live_app` (module): `make_live_app(env={"EVENTHUB_RUN_LOOPS": "1"})`
  starts another app with its own fresh database (a copy of the migrated
  template, so it is quick) and extra environment; stopped at the end of the
  module. Use it when a test needs the background loops or a pristine design.
- `browser` (session): Playwright's Browser (headless /usr/bin/chromium).
- `page_as` (per test): `page_as(role, app=None)` -> a Page in a new context on the
  home page, logged in as that persona (role None: anonymous), base_url set to the app.
  The first page of a role on an app logs in through the login form; later ones reuse
  that session's cookies (a login costs the app a password hash and the browser two pages).
  `page_as.errors(page)` lists uncaught JS errors and console errors seen so far.
  Contexts close at teardown; when the test failed, every page it opened is
  saved under var/screenshots/<test>-<n>.png first.

Other rules:
- No sleeps: wait with Playwright's auto-waiting `expect(...)` or `page.wait_for_function`.
- Use unique names (the `unique` fixture): the shared app's database lives for
  the whole session and other tests write to it too. Every live app also shares
  the test run's Redis database and broker (topics, stream keys, channel layer).
- Browser tests run early (tests/conftest.py orders the long files first, a browser
  file after every two others), at most BROWSER_SLOTS modules at a time across the
  workers (`_browser_slot`, taken by `browser` and `make_live_app`). The
  `browser` fixture stops with its module: while Playwright's sync API runs, its
  asyncio loop is registered on the main thread, and Django's ORM refuses to run
  in a thread with a running loop, so a database test after it in the same
  process would fail.
- Chromium missing: the tests are skipped with the reason, except under CI
  (CI=true or CI=1), where that is an error (`tests.requirements.require`).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from eventhub.broker import free_port
from eventhub.launcher import web_command
from tests.requirements import require
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
# Two cores shared with Daphne, the broker and the collector: a 3 MB mermaid.js can take
# more than Playwright's default 5 s to parse and draw. Assertions still wait on conditions.
EXPECT_TIMEOUT_MS = 20_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)
SCREENSHOTS = ROOT / "var" / "screenshots"


def readme_screenshot(name: str) -> Path:
    """Where a test draws a README screenshot: var/screenshots/readme/<name> on every run,
    docs/screenshots/<name> only with EVENTHUB_UPDATE_SCREENSHOTS=1, so that running the
    tests leaves the committed pictures (and the working tree) as they were."""
    folder = ROOT / "docs" / "screenshots" if os.environ.get("EVENTHUB_UPDATE_SCREENSHOTS") else SCREENSHOTS / "readme"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def draw_readme_picture(page, name: str, **options) -> None:
    """`page.screenshot(**options)` into readme_screenshot(name), for a picture that is a
    by-product of a test whose checks come before it.

    Under `make screenshots` (EVENTHUB_UPDATE_SCREENSHOTS=1) a capture that times out fails
    the test. In other runs it is a warning in the summary: twice in `make test`, with every
    worker on a browser, fault or load test (before `_browser_slot`), Chromium gave the
    full-page capture of the live dashboard no frame for 20 s, then for more than a minute
    (the failure hook's own capture included), after every check of the test had passed.
    """
    try:
        page.screenshot(path=str(readme_screenshot(name)), **options)
    except PlaywrightTimeout as error:
        if os.environ.get("EVENTHUB_UPDATE_SCREENSHOTS"):
            raise
        warnings.warn(f"README picture {name} not drawn: {error}", stacklevel=2)


@contextmanager
def demo_shop(env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """`manage.py simulate` with this environment: the demo shop's services trading through
    the SDK. Killed on the way out (SIGKILL): no test checks how it stops, and on SIGTERM it
    took 13 s to more than 15 s to exit under `make test`, which teardowns used to wait for."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "simulate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STARTUP_SECONDS = 60
VIEWPORT = {"width": 1400, "height": 900}

# role -> (username, password, group or None for the superuser)
PERSONAS: dict[str, tuple[str, str, str | None]] = {
    "admin": ("ada-admin", "browser-admin-pw", None),
    "designer": ("dana-designer", "browser-designer-pw", "Designer"),
    "operator": ("otto-operator", "browser-operator-pw", "Operator"),
    "viewer": ("vera-viewer", "browser-viewer-pw", "Viewer"),
}

_CREATE_PERSONAS = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
User = get_user_model()
for username, password, group in {personas!r}:
    if group is None:
        User.objects.create_superuser(username, username + "@example.com", password)
    else:
        user = User.objects.create_user(username, username + "@example.com", password)
        user.groups.add(Group.objects.get(name=group))
print("personas:", User.objects.count())
"""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so teardown knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --------------------------------------------------------------------------- the live app
def _app_env(db_path: Path, var_dir: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    # The loops (collector, dead-letter ingester) only when a test asks for them.
    env.pop("EVENTHUB_RUN_LOOPS", None)
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        EVENTHUB_VAR_DIR=str(var_dir),
        DEBUG="true",
        EVENTHUB_WORKERS="inprocess",
        DJANGO_SETTINGS_MODULE="eventhub.settings",
        PYTHONUNBUFFERED="1",
        # Each live app its own monitor keys and heartbeat reader group on the shared Redis/broker.
        EVENTHUB_MONITOR_NAMESPACE=f"eventhub:test:{var_dir.parent.name}",
    )
    env.update(extra or {})
    return env


def _run_manage(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


@dataclass
class LiveApp:
    """One running EventHub (Daphne) with its own SQLite database."""

    url: str
    env: dict[str, str]
    db_path: Path
    log_path: Path
    process: subprocess.Popen | None = None
    users: dict[str, tuple[str, str]] = field(default_factory=dict)
    # role -> the browser storage state (session and CSRF cookies) of its first login
    signed_in: dict[str, dict] = field(default_factory=dict)

    def manage(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        """Run a management command against this app's database (raises on failure unless check=False)."""
        return _run_manage(self.env, *args, check=check, timeout=timeout)

    def shell(self, code: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run Python in `manage.py shell -c` against this app's database; print() what you need back."""
        return self.manage("shell", "-c", code, check=check)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start Daphne on this app's port, database and environment; return once /healthz says ok."""
        port = self.url.rsplit(":", 1)[1]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                web_command("127.0.0.1", int(port), options=""),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_until_healthy(self)

    def restart(self) -> None:
        """Stop and start again (same port, database, environment): for reconnect tests."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_until_healthy(app: LiveApp) -> None:
    """Poll /healthz until it answers 200, the process dies, or the deadline passes."""
    last = ["no answer yet"]

    def healthy() -> bool:
        if app.process is None or app.process.poll() is not None:
            code = app.process.returncode if app.process else None
            raise RuntimeError(f"daphne exited with {code}:\n{app.log_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{app.url}/healthz", timeout=2) as response:
                last[0] = f"HTTP {response.status}"
                return response.status == 200
        except urllib.error.HTTPError as error:
            last[0] = f"HTTP {error.code}: {error.read()[:500]!r}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last[0] = str(error)
        return False

    try:
        wait_until(healthy, STARTUP_SECONDS, "Daphne's /healthz to answer 200", every_s=0.1)
    except AssertionError:
        app.stop()
        raise RuntimeError(
            f"daphne not healthy after {STARTUP_SECONDS}s ({last[0]}):\n{app.log_text()[-4000:]}"
        ) from None


def _run_folder(tmp_path_factory, worker_id) -> Path:
    """This run's temporary folder, shared by its xdist workers (each has its own below it)."""
    folder = tmp_path_factory.getbasetemp()
    return folder.parent if worker_id != "master" else folder


# How many modules may drive Chromium or run a live app of their own at once, across the
# run's workers (`_browser_slot`).
BROWSER_SLOTS = 1


@pytest.fixture(scope="module")
def _browser_slot(tmp_path_factory, worker_id) -> Iterator[None]:
    """One of BROWSER_SLOTS places, held while a module runs Chromium or live apps.

    `make test` runs five workers on two cores, and the long files go first: with every
    worker on a browser module (a live app with its loops, a demo simulator, Chromium),
    the load average reached 20, a dashboard test took 90-138 s instead of 13-22, and its
    waits timed out. With two places, one run in four still timed out opening a dashboard
    (a live app with its loops and the demo simulator, beside another browser module). A
    worker waits here for a place; the others go on with other files.
    """
    folder = _run_folder(tmp_path_factory, worker_id) / "eventhub-browser-slots"
    folder.mkdir(exist_ok=True)

    def take() -> IO | None:
        for number in range(BROWSER_SLOTS):
            handle = open(folder / str(number), "w")  # noqa: SIM115 - held until the module ends
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return handle
            except BlockingIOError:
                handle.close()
        return None

    # A browser module takes 1-4 minutes; every other worker may be queued on the place.
    handle = wait_until(take, 30 * 60, "a browser slot", every_s=0.5)
    try:
        yield
    finally:
        handle.close()  # the lock goes with it


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory, worker_id) -> Path:
    """A migrated database with the personas, copied by every live app.

    Made once per run, by the first xdist worker that needs it, in the folder the workers
    share; the others wait for it on a lock. Making it costs about 2 s of CPU (migrations
    and four password hashes), and most workers start live apps.
    """
    folder = _run_folder(tmp_path_factory, worker_id) / "eventhub-template"
    folder.mkdir(exist_ok=True)
    db_path = folder / "template.sqlite3"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not db_path.exists():
            building = folder / "building.sqlite3"
            building.unlink(missing_ok=True)
            env = _app_env(building, folder / "var", None)
            # One process for both: each manage.py start costs seconds of imports.
            personas = [(u, p, g) for u, p, g in PERSONAS.values()]
            _run_manage(env, "shell", "-c", _CREATE_PERSONAS.format(personas=personas))
            building.replace(db_path)
    return db_path


def _new_live_app(tmp_path_factory, template_db: Path, env: dict[str, str] | None, name: str) -> LiveApp:
    """A LiveApp (not started yet) on a fresh copy of the template database."""
    folder = tmp_path_factory.mktemp(f"eventhub-{name}")
    db_path = folder / "eventhub.sqlite3"
    shutil.copyfile(template_db, db_path)
    app = LiveApp(
        url=f"http://127.0.0.1:{free_port()}",
        env=_app_env(db_path, folder / "var", env),
        db_path=db_path,
        log_path=folder / "daphne.log",
        users={role: (username, password) for role, (username, password, _) in PERSONAS.items()},
    )
    atexit.register(app.stop)  # also when the session is torn down abnormally
    return app


@pytest.fixture(scope="module")
def make_live_app(tmp_path_factory, _template_db, _browser_slot) -> Iterator[Callable[..., LiveApp]]:
    """make_live_app(env=None, name="app") -> a started LiveApp on a fresh copy of the template DB.

    The apps stop with the module that started them: one running its loops (collector,
    indexer, ingester) would otherwise keep working on the run's two cores until the end.
    """
    started: list[LiveApp] = []

    def start(env: dict[str, str] | None = None, name: str = "app") -> LiveApp:
        app = _new_live_app(tmp_path_factory, _template_db, env, name)
        started.append(app)
        app.start()
        return app

    yield start
    for app in reversed(started):
        app.stop()


@pytest.fixture(scope="session")
def live_app(tmp_path_factory, _template_db) -> Iterator[LiveApp]:
    """The shared live EventHub for this test session (no loops: it idles between tests)."""
    app = _new_live_app(tmp_path_factory, _template_db, None, "shared")
    app.start()
    yield app
    app.stop()


# --------------------------------------------------------------------------- Chromium
_RUNNING: list = []  # the process's one Browser, see `browser`


@pytest.fixture(scope="module")
def browser(_browser_slot):
    """Headless Debian Chromium driven by Playwright (never `playwright install`).

    One per module, and one at a time: Playwright's sync API runs its event loop
    on the main thread and refuses a second `sync_playwright()` there, so a
    conftest that imports these fixtures (tests/e2e) gets the Browser already
    running, if any. It stops with its module because, while it runs, Django
    sees that loop and refuses database access to every other test in this
    process (SynchronousOnlyOperation); under pytest-xdist such tests share the
    process.
    """
    if _RUNNING:
        yield _RUNNING[0]
        return
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        _RUNNING.append(chromium)
        try:
            yield chromium
        finally:
            _RUNNING.remove(chromium)
            chromium.close()


def _console_error(errors: list[str], message) -> None:
    if message.type != "error":
        return
    where = message.location.get("url", "") if message.location else ""
    # Chromium asks every site for /favicon.ico; EventHub has none, and that is not a page error.
    if where.endswith("/favicon.ico"):
        return
    errors.append(f"console: {message.text} ({where})")


class PageFactory:
    """`page_as(role, app=None)`; see the module docstring."""

    def __init__(self, browser, default_app: LiveApp) -> None:
        self._browser = browser
        self._default_app = default_app
        self.pages: list = []
        self._errors: dict[int, list[str]] = {}

    def __call__(self, role: str | None = "designer", app: LiveApp | None = None):
        app = app or self._default_app
        state = app.signed_in.get(role) if role is not None else None
        context = self._browser.new_context(base_url=app.url, viewport=VIEWPORT, storage_state=state)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        self._errors[id(page)] = errors
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        page.on("console", lambda message: _console_error(errors, message))
        self.pages.append(page)
        if role is not None:
            page.goto("/")
            if "/login/" in page.url:  # the role's first page on this app, or its session ended
                username, password = app.users[role]
                page.fill("#id_username", username)
                page.fill("#id_password", password)
                page.click("form button[type=submit]")
                page.wait_for_url(lambda url: "/login/" not in url)
                app.signed_in[role] = context.storage_state()
        return page

    def errors(self, page) -> list[str]:
        return list(self._errors.get(id(page), []))

    def close(self, failed_test: str | None) -> None:
        for number, page in enumerate(self.pages, start=1):
            if failed_test and not page.is_closed():
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", failed_test)[:150]
                try:
                    page.screenshot(path=str(SCREENSHOTS / f"{safe}-{number}.png"), full_page=True)
                except Exception as error:  # noqa: BLE001 - a failed screenshot must not hide the test's failure
                    print(f"screenshot failed: {error}")
            page.context.close()


@pytest.fixture
def page_as(browser, live_app, request) -> Iterator[PageFactory]:
    factory = PageFactory(browser, live_app)
    yield factory
    report = getattr(request.node, "rep_call", None)
    factory.close(request.node.nodeid if report is not None and report.failed else None)
