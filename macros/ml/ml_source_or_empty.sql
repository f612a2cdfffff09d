{#-
    The body of a CTE reading a table the Python ML assets write into the `ml` schema (churn
    scores, CLV scores). Such a table does not exist before the first training: the source is
    still referenced (lineage, docs, Dagster ordering) but read only when the relation exists;
    otherwise an empty result with the given columns keeps `dbt build` green on a fresh
    warehouse. In a dbt unit test the source is the test's fixture (a relation without schema)
    and is always read. `columns`: (name, type) pairs; type 'string' is the adapter's string.
-#}
{% macro ml_source_or_empty(table_name, columns) %}
    {%- set scores_source = source('ml', table_name) -%}
    {%- set scores_exist = (not execute)
        or scores_source.schema is none
        or (load_relation(scores_source) is not none) -%}
    {%- if scores_exist -%}
    select * from {{ scores_source }}
    {%- else -%}
    select
    {%- for name, type in columns %}
        cast(null as {{ dbt.type_string() if type == 'string' else type }}) as {{ name }}
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
    where 1 = 0
    {%- endif -%}
{% endmacro %}
