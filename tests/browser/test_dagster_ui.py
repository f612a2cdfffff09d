"""The Dagster UI started exactly as README says (`make dagster`), from a shell whose PATH has no
`.venv/bin`, driven in headless Chromium (Playwright): the code location loads without an error,
the asset graph draws the dbt models, and the automation page lists the schedules and sensors.

`make dagster` runs `.venv/bin/dagster dev`; the code location re-parses the dbt project on load
and builds a DbtCliResource, and both used to look `dbt` up on PATH: the location failed to
load and the graph was empty, while a test that started dagster-webserver from the venv passed.
Skipped where Chromium is not installed; CI installs Debian's (.ci/run)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
CANDIDATES = (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
CHROMIUM = next((path for path in CANDIDATES if path and Path(path).exists()), None)
LOCATION = "orchestration.definitions"
# make dagster's output, for the warnings check.
LOGS: dict[str, Path] = {}

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def path_without_venv(path: str) -> str:
    """PATH as a shell without the venv activated has it: no virtualenv's bin folder."""
    kept = []
    for entry in path.split(os.pathsep):
        folder = Path(entry)
        if entry and not (folder / "activate").exists() and not (folder / "dbt").exists():
            kept.append(entry)
    return os.pathsep.join(kept)


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


LOCATION_STATUS = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def location_entry(base: str) -> dict | None:
    entries = graphql(base, LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
    return next((entry for entry in entries if entry["name"] == LOCATION), None)


def wait_for_location(base: str, process: subprocess.Popen, log: Path, timeout: float) -> dict:
    """The code location's entry once it finished loading (loaded or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"make dagster exited with {process.returncode}:\n{log.read_text()}")
        try:
            entry = location_entry(base)
            if entry and entry["loadStatus"] == "LOADED":
                return entry
        except OSError:
            pass
        time.sleep(2)
    raise TimeoutError(f"{base} did not load {LOCATION} within {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dagster_ui")
    port = free_port()
    env = {
        **os.environ,
        "PATH": path_without_venv(os.environ.get("PATH", "")),
        # Makefile variables README mentions; dagster-home writes the telemetry-off dagster.yaml.
        "DAGSTER_HOME": str(root / "dagster_home"),
        "DAGSTER_PORT": str(port),
        "USEROPS_DBT_TARGET_PATH": str(root / "target"),
        "USEROPS_LANDING_DIR": str(root / "landing"),
        "USEROPS_DUCKDB_PATH": str(root / "warehouse.duckdb"),
    }
    for name in ("VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    assert shutil.which("dbt", path=env["PATH"]) is None
    log_path = root / "make_dagster.log"
    LOGS["make_dagster"] = log_path
    log = log_path.open("w")
    process = subprocess.Popen(
        ["make", "dagster"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group: dagster dev starts the webserver, daemon and code server.
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_location(base, process, log_path, timeout=420)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()


def page_text(browser: object, url: str, wait_for_text: str) -> str:
    """The page's text once `wait_for_text` is drawn. A large viewport: the graph only renders
    nodes inside it."""
    page = browser.new_page(viewport={"width": 3000, "height": 4000})  # type: ignore[attr-defined]
    try:
        page.goto(url)
        page.get_by_text(wait_for_text, exact=False).first.wait_for(timeout=120_000)
        return page.content()
    finally:
        page.close()


def test_code_location_loads_without_error(webserver: str, browser: object) -> None:
    entry = location_entry(webserver)
    assert entry is not None
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    text = page_text(browser, f"{webserver}/locations", LOCATION)
    assert "Loaded" in text
    assert "Failed" not in text


def test_asset_graph_shows_the_dbt_models(webserver: str, browser: object) -> None:
    url = f"{webserver}/locations/{LOCATION}/asset-groups/marts_core"
    text = page_text(browser, url, "time_spine_daily")
    for model in ("users", "time_spine_daily"):
        assert model in text, model


def test_asset_graph_renders_the_project_groups(webserver: str, browser: object) -> None:
    text = page_text(browser, f"{webserver}/asset-groups", "marts_core")
    for group in ("landing", "staging", "intermediate", "marts_core", "marts_data_quality"):
        assert group in text, group


def test_landing_group_graph_renders_its_assets(webserver: str, browser: object) -> None:
    url = f"{webserver}/locations/{LOCATION}/asset-groups/landing"
    text = page_text(browser, url, "base_landing__events")
    for table in ("users", "events", "orders", "order_items", "marketing_spend"):
        assert table in text, table


def test_automation_page_lists_schedules_and_sensors(webserver: str, browser: object) -> None:
    text = page_text(browser, f"{webserver}/automation", "userops_daily_schedule")
    for name in ("userops_daily_schedule", "landing_files_sensor", "run_failure_log_sensor"):
        assert name in text, name


def test_make_dagster_prints_no_third_party_warnings(webserver: str) -> None:
    text = LOGS["make_dagster"].read_text()
    for warning in ("SupersessionWarning", "BetaWarning", "pandas >= 3", "FutureWarning"):
        assert warning not in text, warning
