{#- Whether the target can delete rows of a model's table, which the day-partitioned incremental
    models need (delete+insert plus a delete pre-hook). DuckDB can; Spark cannot on plain parquet
    tables (DELETE needs Delta or Iceberg), so there those models are rebuilt as tables. -#}
{% macro incremental_deletes_supported() %}
    {{- return(adapter.dispatch('incremental_deletes_supported', 'userops')()) -}}
{% endmacro %}

{% macro default__incremental_deletes_supported() %}
    {{- return(false) -}}
{% endmacro %}

{% macro duckdb__incremental_deletes_supported() %}
    {{- return(true) -}}
{% endmacro %}
