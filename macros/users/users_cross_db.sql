{#- Dialect differences of the tags, layers and audiences models (default__ = Spark SQL). -#}

{#- Exact median of a numeric expression, as an aggregate. -#}
{% macro median_of(expression) %}
    {{- return(adapter.dispatch('median_of', 'userops')(expression)) -}}
{% endmacro %}

{% macro default__median_of(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}

{% macro duckdb__median_of(expression) -%}
    median({{ expression }})
{%- endmacro %}


{#- A stable number in [0, 1) from text: the first 8 hex digits of its md5 (dbt.hash) divided by
    16^8. Same input, same bucket, on every engine and every run. -#}
{% macro hash_bucket(text_expression) %}
    {{- return(adapter.dispatch('hash_bucket', 'userops')(text_expression)) -}}
{% endmacro %}

{% macro default__hash_bucket(text_expression) -%}
    (cast(conv(substr({{ dbt.hash(text_expression) }}, 1, 8), 16, 10) as bigint) / 4294967296.0)
{%- endmacro %}

{% macro duckdb__hash_bucket(text_expression) -%}
    (cast('0x' || substr({{ dbt.hash(text_expression) }}, 1, 8) as bigint) / 4294967296.0)
{%- endmacro %}


{#- True on Saturdays and Sundays. -#}
{% macro is_weekend(date_expression) %}
    {{- return(adapter.dispatch('is_weekend', 'userops')(date_expression)) -}}
{% endmacro %}

{% macro default__is_weekend(date_expression) -%}
    (dayofweek({{ date_expression }}) in (1, 7))
{%- endmacro %}

{% macro duckdb__is_weekend(date_expression) -%}
    (isodow({{ date_expression }}) >= 6)
{%- endmacro %}


{#- The churn-score plug-in: true when var churn_scores_model names a model. -#}
{% macro churn_scores_enabled() -%}
    {{- return(var('churn_scores_model', none) not in [none, '', 'none']) -}}
{%- endmacro %}
