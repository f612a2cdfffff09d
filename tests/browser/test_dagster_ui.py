"""The Dagster UI in a real browser: start dagster-webserver on 127.0.0.1, load the asset graph
and the automation (schedules and sensors) pages in headless Chromium, and check they render the
project's groups, assets, schedules and sensors. Skipped where Chromium is not installed; CI
installs it (.ci/run)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from userops.manifest import prepare_manifest

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # The graph only renders nodes inside the viewport: a large window shows them all.
    "--window-size=3000,4000",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dagster_ui")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "DO_NOT_TRACK": "1",
        "USEROPS_DBT_TARGET_PATH": str(root / "target"),
        "USEROPS_LANDING_DIR": str(root / "landing"),
        "USEROPS_DUCKDB_PATH": str(root / "warehouse.duckdb"),
    }
    os.environ["USEROPS_DBT_TARGET_PATH"] = env["USEROPS_DBT_TARGET_PATH"]
    try:
        prepare_manifest(root / "target")
    finally:
        del os.environ["USEROPS_DBT_TARGET_PATH"]
    port = free_port()
    webserver_bin = Path(sys.executable).with_name("dagster-webserver")
    log = (root / "webserver.log").open("w")
    process = subprocess.Popen(
        [str(webserver_bin), "-h", "127.0.0.1", "-p", str(port), "-m", "orchestration.definitions"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/server_info", process, timeout=300)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def rendered_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (virtual time lets the GraphQL calls finish)."""
    result = subprocess.run(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=30000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_asset_graph_renders_the_project_groups(webserver: str, tmp_path: Path) -> None:
    dom = rendered_dom(f"{webserver}/asset-groups", tmp_path / "profile")
    assert "Global asset lineage" in dom
    for group in ("landing", "staging", "intermediate", "marts_core", "marts_data_quality"):
        assert group in dom, group


def test_landing_group_graph_renders_its_assets(webserver: str, tmp_path: Path) -> None:
    url = f"{webserver}/locations/orchestration.definitions/asset-groups/landing"
    dom = rendered_dom(url, tmp_path / "profile")
    for table in ("users", "events", "orders", "order_items", "marketing_spend"):
        assert table in dom, table
    # Their downstream dbt models are drawn as neighbours.
    assert "base_landing__events" in dom


def test_automation_page_lists_schedules_and_sensors(webserver: str, tmp_path: Path) -> None:
    dom = rendered_dom(f"{webserver}/automation", tmp_path / "profile")
    for name in ("userops_daily_schedule", "landing_files_sensor", "run_failure_log_sensor"):
        assert name in dom, name
