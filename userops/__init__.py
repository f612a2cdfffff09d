"""userops: a warehouse-native user-operations analytics system."""

import warnings

# pyspark (installed for dbt-spark) warns on import that it does not fully support pandas >= 3.
# Great Expectations imports pyspark.testing whenever pyspark is installed, so every quality
# check printed it, though nothing here runs pandas through pyspark (docs/spark.md runs Spark
# inside dbt). Only that warning, only from pyspark's modules.
warnings.filterwarnings(
    "ignore",
    message="PySpark does not yet fully support pandas",
    category=FutureWarning,
    module=r"pyspark(\.|$)",
)
