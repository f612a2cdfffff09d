{#-
    The body of a CTE reading ml.churn_scores. That table is written by the Python churn model
    (Dagster asset churn_scores), so it does not exist before the first training: the source
    is still referenced (lineage, docs, Dagster ordering) but read only when the relation
    exists; otherwise an empty result with the same columns keeps `dbt build` green on a fresh
    warehouse. In a dbt unit test the source is the test's fixture (a relation without schema)
    and is always read.
-#}
{% macro churn_scores_or_empty() %}
    {%- set scores_source = source('ml', 'churn_scores') -%}
    {%- set scores_exist = (not execute)
        or scores_source.schema is none
        or (load_relation(scores_source) is not none) -%}
    {%- if scores_exist -%}
    select * from {{ scores_source }}
    {%- else -%}
    select
        cast(null as {{ dbt.type_string() }}) as user_id,
        cast(null as date) as scored_date,
        cast(null as double) as churn_probability,
        cast(null as {{ dbt.type_string() }}) as risk_tier,
        cast(null as {{ dbt.type_string() }}) as model_version
    where 1 = 0
    {%- endif -%}
{% endmacro %}
