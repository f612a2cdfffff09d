"""Operator edits of the seeds that break a rule fail the build, naming the rule (issue 14, "Not
yet tried"): a duplicate tag row, a funnel step with an unknown event, two north stars.

The project is copied to a temporary folder (dbt reads seeds from its own project only) and only
the seeds and their tests are built, in one dbt invocation for the three edits.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT_DIR

from userops.dbt import dbt_env, dbt_executable

# What a dbt build of the project reads; tests/ holds the singular and generic data tests.
PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
PROJECT_FOLDERS = ("models", "macros", "seeds")


def copy_project(target: Path) -> Path:
    target.mkdir(parents=True)
    for name in PROJECT_FILES:
        shutil.copy(PROJECT_DIR / name, target / name)
    for name in PROJECT_FOLDERS:
        shutil.copytree(PROJECT_DIR / name, target / name)
    shutil.copytree(
        PROJECT_DIR / "tests",
        target / "tests",
        ignore=lambda folder, names: [n for n in names if n in ("python", "browser")],
    )
    return target


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def edit_seeds(seeds: Path) -> dict[str, str]:
    """Break one rule in each of three seeds; returns test name -> what was done."""
    fields, tags = read_rows(seeds / "tag_catalogue.csv")
    range_row = next(row for row in tags if row["rule_type"] == "range")
    write_rows(seeds / "tag_catalogue.csv", fields, [*tags, dict(range_row)])

    fields, steps = read_rows(seeds / "funnels.csv")
    known = {row["event_name"] for row in read_rows(seeds / "event_mapping.csv")[1]}
    steps[1]["event_name"] = steps[1]["event_name"] + "_typo"
    assert steps[1]["event_name"] not in known
    write_rows(seeds / "funnels.csv", fields, steps)

    fields, metrics = read_rows(seeds / "metric_catalogue.csv")
    assert sum(row["is_north_star"] == "true" for row in metrics) == 1
    second = next(row for row in metrics if row["is_north_star"] == "false")
    second["is_north_star"] = "true"
    write_rows(seeds / "metric_catalogue.csv", fields, metrics)
    return {
        "tag_catalogue_has_one_row_per_tag_code_and_value": (
            f"tag {range_row['tag_code']}/{range_row['tag_value']} twice"
        ),
        "funnels_step_event_name_is_a_canonical_event_of_event_mapping": steps[1]["event_name"],
        "metric_catalogue_has_exactly_one_north_star": f"{second['metric_code']} a second star",
    }


@pytest.fixture(scope="module")
def edited_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str, int]:
    root = tmp_path_factory.mktemp("seed_edits")
    project = copy_project(root / "project")
    broken = edit_seeds(project / "seeds")
    env = dbt_env(root / "landing", root / "w.duckdb")
    env["DBT_PROJECT_DIR"] = str(project)
    env["DBT_PROFILES_DIR"] = str(project)
    env["USEROPS_DUCKDB_TEMP_DIR"] = str(root / "tmp")
    seeds = ["tag_catalogue", "funnels", "event_mapping", "metric_catalogue"]
    result = subprocess.run(
        [dbt_executable(), "build", "--select", *seeds, "--exclude-resource-type", "unit_test",
         # Only tests whose every parent is selected (not those of marts that read the seeds).
         "--indirect-selection", "cautious",
         "--target-path", str(root / "target"), "--log-path", str(root / "logs")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )  # fmt: skip
    return broken, result.stdout + result.stderr, result.returncode


def test_each_broken_seed_rule_fails_the_build_by_name(
    edited_build: tuple[dict[str, str], str, int],
) -> None:
    broken, output, returncode = edited_build
    assert returncode == 1, output[-3000:]
    failed = set(re.findall(r"Failure in test (\w+) ", output))
    # Exactly the three rules that were broken, each by its name; every other seed test passes.
    assert failed == set(broken), output[-3000:]
    for name in broken:
        assert re.search(rf"FAIL 1 {name} ", output), (name, output[-3000:])
    assert re.search(r"Done\. PASS=\d+ WARN=0 ERROR=3 SKIP=0", output), output[-1000:]
