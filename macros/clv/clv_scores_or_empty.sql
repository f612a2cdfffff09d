{#-
    The body of a CTE reading ml.clv_scores, written by the Python CLV model (Dagster asset
    clv_scores): like churn_scores_or_empty, the source is referenced for lineage and ordering
    but read only when the relation exists; otherwise an empty result of the same columns keeps
    `dbt build` green on a fresh warehouse. In a unit test the source is the fixture.
-#}
{% macro clv_scores_or_empty() %}
    {%- set scores_source = source('ml', 'clv_scores') -%}
    {%- set scores_exist = (not execute)
        or scores_source.schema is none
        or (load_relation(scores_source) is not none) -%}
    {%- if scores_exist -%}
    select * from {{ scores_source }}
    {%- else -%}
    select
        cast(null as {{ dbt.type_string() }}) as user_id,
        cast(null as date) as scored_date,
        cast(null as double) as predicted_value_90d,
        cast(null as double) as predicted_value_365d,
        cast(null as {{ dbt.type_string() }}) as predicted_value_tier
    where 1 = 0
    {%- endif -%}
{% endmacro %}

{#- The CLV-score plug-in of the tag engine: true when var clv_scores_model names a model. -#}
{% macro clv_scores_enabled() -%}
    {{- return(var('clv_scores_model', none) not in [none, '', 'none']) -}}
{%- endmacro %}
