"""Run config every job of the code location starts from (and `make demo`, `make bench` use)."""

from __future__ import annotations

from typing import Any

# A run's console gets INFO and above: Dagster logs every event (each dbt result's output,
# materialization and asset check) at DEBUG, ~2,100 lines for a day run of the dbt assets at
# 1M events (2.8 s of the run's Python), all of which the run's event log keeps anyway.
# The launchpad shows this as the jobs' default config.
RUN_LOGGING: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
