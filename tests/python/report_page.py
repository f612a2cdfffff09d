"""Open the HTML report in headless Chromium (Debian's /usr/bin/chromium through Playwright):
console errors, what each chart drew, render time, and a screenshot per section."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PROJECT_DIR = Path(__file__).resolve().parents[2]
# Rendered only when every chart div has its plotly layout: then each trace's point count.
DRAWN = """() => (window.USEROPS_CHARTS || []).every(key => {
    const div = document.getElementById('chart-' + key);
    return div && div._fullLayout && div.querySelector('.main-svg');
})"""
POINTS = """() => Object.fromEntries((window.USEROPS_CHARTS || []).map(key => {
    const div = document.getElementById('chart-' + key);
    const count = (trace) => ['x', 'y', 'z', 'values', 'labels']
        .map(name => (trace[name] && trace[name].length) || 0)
        .concat([(trace.link && trace.link.value && trace.link.value.length) || 0])
        .reduce((a, b) => Math.max(a, b), 0);
    const marks = div.querySelectorAll(
        'path.point, .bars path, .heatmaplayer image, .sankey .sankey-link, '
        + '.trace.scatter path.js-line, .treemap path, .funnel path, .waterfall path').length;
    return [key, {traces: div.data.length, points: div.data.reduce((a, t) => a + count(t), 0),
                  marks: marks}];
}))"""


@dataclass(frozen=True)
class PageCheck:
    console_errors: list[str]
    remote_requests: list[str]
    charts: dict[str, dict[str, int]]
    sections: list[str]
    empty_sections: list[str]
    seconds: float
    screenshots: list[Path]


def artifacts_dir(name: str) -> Path:
    """Where tests leave screenshots: $USEROPS_TEST_ARTIFACTS or test-artifacts/ (gitignored)."""
    root = Path(os.environ.get("USEROPS_TEST_ARTIFACTS", PROJECT_DIR / "test-artifacts"))
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_report(path: Path, screenshots: Path) -> PageCheck:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "request",
                lambda r: (
                    requests.append(r.url)
                    if not r.url.startswith(("file:", "data:", "blob:", "about:"))
                    else None
                ),
            )
            started = time.perf_counter()
            page.goto(path.resolve().as_uri())
            page.wait_for_function(DRAWN, timeout=120_000)
            seconds = time.perf_counter() - started
            charts = page.evaluate(POINTS)
            sections = [s.get_attribute("id") for s in page.query_selector_all("section")]
            empty = page.eval_on_selector_all(
                "section",
                "sections => sections.filter(s => s.querySelector('.empty')).map(s => s.id)",
            )
            shots = []
            for section in page.query_selector_all("section"):
                target = screenshots / f"{section.get_attribute('id')}.png"
                section.screenshot(path=str(target))
                shots.append(target)
            page.screenshot(path=str(screenshots / "page.png"), full_page=True)
        finally:
            browser.close()
    return PageCheck(errors, requests, charts, sections, empty, seconds, shots)
