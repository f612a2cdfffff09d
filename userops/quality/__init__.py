"""Great Expectations suites on landing files and key marts, graded error / warning.

`landing` and `marts` build the suites from the project's own definitions (the landing contract
in _landing__sources.yml, seeds/event_mapping.csv, thresholds in dbt_project.yml vars), `validate`
runs them with an ephemeral GX context, `results` appends every outcome to the warehouse table
`ops.data_quality_results`.
"""
