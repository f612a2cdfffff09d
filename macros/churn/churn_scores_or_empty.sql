{#- ml.churn_scores (Dagster asset churn_scores), or an empty result before the first training. -#}
{% macro churn_scores_or_empty() %}
    {{- ml_source_or_empty('churn_scores', [
        ('user_id', 'string'), ('scored_date', 'date'), ('churn_probability', 'double'),
        ('risk_tier', 'string'), ('model_version', 'string'),
    ]) -}}
{% endmacro %}
