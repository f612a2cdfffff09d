{#- ml.clv_scores (Dagster asset clv_scores), or an empty result before the first scoring. -#}
{% macro clv_scores_or_empty() %}
    {{- ml_source_or_empty('clv_scores', [
        ('user_id', 'string'), ('scored_date', 'date'), ('predicted_value_90d', 'double'),
        ('predicted_value_365d', 'double'), ('predicted_value_tier', 'string'),
    ]) -}}
{% endmacro %}

{#- The CLV-score plug-in of the tag engine: true when var clv_scores_model names a model. -#}
{% macro clv_scores_enabled() -%}
    {{- return(var('clv_scores_model', none) not in [none, '', 'none']) -}}
{%- endmacro %}
