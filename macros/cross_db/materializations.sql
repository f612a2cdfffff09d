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


{#- Put after `<cte> as` for a CTE read more than once that must not be stored. DuckDB
    materializes every CTE read more than once (docs: WITH clause, CTE materialization), and at
    scale that copy is what costs:
    - the raw-row CTEs of the base_landing__ models: every raw row with its struct copy
      (100 M events: more than 45 GB spilled before the disk filled);
    - import CTEs (`select * from ref(...)`) of tables read more than once: a copy of the table
      instead of a scan that reads only the columns each reader needs.
    Inlined, each reader scans again. Import CTEs of views are left alone: there the stored
    copy saves recomputing the view. Spark inlines CTEs itself and has no such keyword. -#}
{% macro inline_cte() %}
    {{- return(adapter.dispatch('inline_cte', 'userops')()) -}}
{% endmacro %}

{% macro default__inline_cte() %}
    {{- return('') -}}
{% endmacro %}

{% macro duckdb__inline_cte() %}
    {{- return('not materialized') -}}
{% endmacro %}
