"""The Dagster code location (orchestration.definitions)."""

import warnings

from dagster import BetaWarning

# The Dagster APIs this code location uses on purpose while they are in beta (landing.py's
# observable source assets): the warning is for the author who chose them, not for the user
# of every run and every load. Other beta or deprecation warnings still show.
warnings.filterwarnings(
    "ignore",
    message="Function `multi_observable_source_asset` is currently in beta",
    category=BetaWarning,
)
