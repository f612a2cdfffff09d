"""The project-local Dagster instance's dagster.yaml (`make dagster-home`).

`python -m orchestration.instance [DAGSTER_HOME]` writes it when it is missing, or when it is a
version this project wrote earlier; a dagster.yaml someone edited is left alone (with a note).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DAGSTER_YAML = """\
# Written by `make dagster-home` (orchestration/instance.py).
telemetry:
  enabled: false
# Run history without an fsync per event (orchestration/event_log_storage.py says why);
# synchronous: full is Dagster's default.
event_log_storage:
  module: orchestration.event_log_storage
  class: UnsyncedSqliteEventLogStorage
  config:
    synchronous: "off"
"""

# What earlier versions of this project wrote: replaced without asking.
EARLIER_VERSIONS = ("telemetry:\n  enabled: false\n",)


def write_dagster_yaml(home: Path) -> str:
    """Write home/dagster.yaml; returns what happened: written, updated, current or kept."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if not path.exists():
        path.write_text(DAGSTER_YAML)
        return "written"
    text = path.read_text()
    if text == DAGSTER_YAML:
        return "current"
    if text in EARLIER_VERSIONS:
        path.write_text(DAGSTER_YAML)
        return "updated"
    return "kept"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    home = Path(args[0] if args else os.environ.get("DAGSTER_HOME", ".dagster_home")).resolve()
    outcome = write_dagster_yaml(home)
    if outcome == "kept":
        print(
            f"note: {home / 'dagster.yaml'} was edited by hand and is kept as it is; "
            "orchestration/instance.py has the settings this project writes"
        )
    elif outcome != "current":
        print(f"{home / 'dagster.yaml'} {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
