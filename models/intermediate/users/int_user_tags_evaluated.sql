-- One row per user, as-of date and tag the user carries that day (标签): the rules of
-- seeds/tag_catalogue.csv applied generically to the as-of facts and layers, so an operator adds
-- or changes a tag by editing the seed. A threshold, range or match rule emits its tag_value when
-- it holds (no row otherwise); an attribute rule emits the metric's text value when present.
-- Every tag is evaluated on every as-of date (week and month closes and the latest data day);
-- refresh_cadence in the catalogue documents how often a tag is expected to change.
{%- set metrics = tag_metrics() %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[as_of_window_delete_hook('int_user_layers_assigned')],
    )
}}
-- Incremental by as-of date like int_users_as_of_aggregated (macros/incremental/day_windows.sql).

with

users_as_of as (
    select * from {{ ref('int_users_as_of_aggregated') }}
    {{ as_of_window_where('as_of_date') }}
),

layers as (
    select * from {{ ref('int_user_layers_assigned') }}
    {{ as_of_window_where('as_of_date') }}
),

tag_catalogue as (
    select * from {{ ref('tag_catalogue') }}
),

satisfaction as (
    select * from {{ ref('int_user_satisfaction_as_of') }}
),

{% if churn_scores_enabled() -%}
churn_scores as (
    select * from {{ ref(var('churn_scores_model')) }}
),
{%- endif %}

{% if clv_scores_enabled() -%}
clv_scores as (
    select * from {{ ref(var('clv_scores_model')) }}
),
{%- endif %}

metric_inputs as (
    select
        users_as_of.*,
        layers.lifecycle_stage,
        layers.period_state,
        layers.activity_tier,
        layers.rfm_segment_code,
        layers.value_tier,
        layers.value_score,
        satisfaction.nps_category,
        coalesce(satisfaction.recent_complaint_tickets, 0) as recent_complaint_tickets,
        {% if churn_scores_enabled() -%}
        churn_scores.churn_score
        {%- else -%}
        cast(null as double) as churn_score
        {%- endif %},
        {% if clv_scores_enabled() -%}
        clv_scores.predicted_value_tier
        {%- else -%}
        cast(null as {{ dbt.type_string() }}) as predicted_value_tier
        {%- endif %}
    from users_as_of
    inner join layers
        on users_as_of.user_id = layers.user_id
        and users_as_of.as_of_date = layers.as_of_date
    left join satisfaction
        on users_as_of.user_id = satisfaction.user_id
        and users_as_of.as_of_date = satisfaction.as_of_date
    {% if churn_scores_enabled() -%}
    left join churn_scores
        on users_as_of.user_id = churn_scores.user_id
        and users_as_of.as_of_date = churn_scores.as_of_date
    {%- endif %}
    {% if clv_scores_enabled() -%}
    left join clv_scores
        on users_as_of.user_id = clv_scores.user_id
        and users_as_of.as_of_date = clv_scores.as_of_date
    {%- endif %}
),

rules_applied as (
    select
        metric_inputs.user_id,
        metric_inputs.as_of_date,
        tag_catalogue.tag_code,
        tag_catalogue.tag_value as rule_tag_value,
        tag_catalogue.category,
        tag_catalogue.rule_type,
        tag_catalogue.operator,
        tag_catalogue.threshold,
        tag_catalogue.lower_bound,
        tag_catalogue.upper_bound,
        tag_catalogue.match_value,
        case tag_catalogue.metric
            {%- for name, (expression, kind) in metrics.items() if kind == 'numeric' %}
            when '{{ name }}' then cast({{ expression }} as double)
            {%- endfor %}
        end as metric_value,
        case tag_catalogue.metric
            {%- for name, (expression, kind) in metrics.items() if kind == 'text' %}
            when '{{ name }}' then cast({{ expression }} as {{ dbt.type_string() }})
            {%- endfor %}
        end as metric_text
    from metric_inputs
    cross join tag_catalogue
),

rules_held as (
    select
        user_id,
        as_of_date,
        tag_code,
        category,
        case when rule_type = 'attribute' then metric_text else rule_tag_value end as tag_value
    from rules_applied
    where case rule_type
        when 'attribute' then metric_text is not null
        when 'match' then metric_text = match_value
        when 'range' then metric_value is not null
            and (lower_bound is null or metric_value >= lower_bound)
            and (upper_bound is null or metric_value < upper_bound)
        when 'threshold' then case operator
            when '>=' then metric_value >= threshold
            when '>' then metric_value > threshold
            when '<=' then metric_value <= threshold
            when '<' then metric_value < threshold
            when '=' then metric_value = threshold
            when '!=' then metric_value != threshold
        end
    end
),

final as (
    select
        user_id,
        as_of_date,
        tag_code,
        tag_value,
        category
    from rules_held
)

select * from final
