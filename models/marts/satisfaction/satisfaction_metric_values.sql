-- Satisfaction and service metrics (满意度 / 客服) per day and segment, in the long form of
-- metric_values (which unions these rows in). Every metric looks at the var
-- satisfaction_window_days (30) days ending on the metric day. Segments are those of
-- int_metric_segment_days_aggregated: static ones, and the layers as of the metric day (the
-- latest as-of date before it, int_layer_dates_mapped), `unassigned` without one.
{%- set window_days = var('satisfaction_window_days') %}
{%- set fact_columns = [
    'nps_answers', 'promoters', 'detractors', 'csat_answers', 'satisfied_answers',
    'active_respondents', 'complaint_tickets', 'replied_tickets', 'first_reply_seconds',
    'resolved_tickets', 'resolution_seconds',
] %}
with

segment_days as (
    select * from {{ ref('int_metric_segment_days_aggregated') }}
),

user_segments as (
    select * from {{ ref('int_user_segments_unpivoted') }}
),

user_layers as (
    select * from {{ ref('user_layers') }}
),

layer_dates as (
    select * from {{ ref('int_layer_dates_mapped') }}
),

feedback as (
    select * from {{ ref('int_feedback_answers_joined') }}
),

tickets as (
    select * from {{ ref('stg_landing__service_tickets') }}
),

metric_days as (
    select distinct metric_date from segment_days
),

-- One row per user and event day with the day's satisfaction facts.
answer_facts as (
    select
        feedback.user_id,
        feedback.submitted_date as fact_date,
        case when feedback.survey_type = 'nps' then 1 else 0 end as nps_answers,
        case when feedback.nps_category = 'promoter' then 1 else 0 end as promoters,
        case when feedback.nps_category = 'detractor' then 1 else 0 end as detractors,
        case when feedback.survey_type = 'csat' then 1 else 0 end as csat_answers,
        case when feedback.is_satisfied then 1 else 0 end as satisfied_answers,
        0 as complaint_tickets,
        0 as replied_tickets,
        cast(0 as bigint) as first_reply_seconds,
        0 as resolved_tickets,
        cast(0 as bigint) as resolution_seconds,
        feedback.is_answered_on_active_day as is_active_respondent
    from feedback
),

ticket_facts as (
    select
        user_id,
        opened_date as fact_date,
        0 as nps_answers,
        0 as promoters,
        0 as detractors,
        0 as csat_answers,
        0 as satisfied_answers,
        case when is_complaint then 1 else 0 end as complaint_tickets,
        -- Whole seconds: integer sums are exact, so the mart does not depend on summation order.
        case when first_replied_at is not null then 1 else 0 end as replied_tickets,
        coalesce({{ dbt.datediff('opened_at', 'first_replied_at', 'second') }}, 0)
            as first_reply_seconds,
        case when resolved_at is not null then 1 else 0 end as resolved_tickets,
        coalesce({{ dbt.datediff('opened_at', 'resolved_at', 'second') }}, 0)
            as resolution_seconds,
        false as is_active_respondent
    from tickets
),

facts as (
    select * from answer_facts
    union all
    select * from ticket_facts
),

-- Each fact counts on every metric day whose window holds it.
windowed as (
    select
        metric_days.metric_date,
        facts.*
    from facts
    inner join metric_days
        on metric_days.metric_date >= facts.fact_date
        and metric_days.metric_date
            < cast({{ dbt.dateadd('day', window_days, 'facts.fact_date') }} as date)
),

user_window_days as (
    select
        metric_date,
        user_id,
        {%- for column in fact_columns if column != 'active_respondents' %}
        sum({{ column }}) as {{ column }},
        {%- endfor %}
        max(case when is_active_respondent then 1 else 0 end) as active_respondents
    from windowed
    group by metric_date, user_id
),

static_segments as (
    select
        user_window_days.metric_date,
        user_segments.segment_dimension,
        user_segments.segment_value,
        {%- for column in fact_columns %}
        user_window_days.{{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from user_window_days
    inner join user_segments
        on user_window_days.user_id = user_segments.user_id
),

user_window_layers as (
    select
        user_window_days.*
        {{- layer_columns('user_layers') }}
    from user_window_days
    left join layer_dates
        on user_window_days.metric_date = layer_dates.date_day
    left join user_layers
        on user_window_days.user_id = user_layers.user_id
        and layer_dates.layer_as_of_date = user_layers.as_of_date
),

layer_segments as (
    {{ unpivot_layers('user_window_layers', ['metric_date'] + fact_columns) }}
),

all_segments as (
    {%- for relation in ['static_segments', 'layer_segments'] %}
    select
        metric_date,
        segment_dimension,
        segment_value,
        {%- for column in fact_columns %}
        {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ relation }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

segment_facts as (
    select
        metric_date,
        segment_dimension,
        segment_value,
        {%- for column in fact_columns %}
        sum({{ column }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from all_segments
    group by metric_date, segment_dimension, segment_value
),

metrics as (
    select
        segment_days.metric_date,
        segment_days.segment_dimension,
        segment_days.segment_value,
        100 * cast(segment_facts.promoters - segment_facts.detractors as double)
            / nullif(segment_facts.nps_answers, 0) as nps,
        cast(segment_facts.satisfied_answers as double)
            / nullif(segment_facts.csat_answers, 0) as csat,
        cast(coalesce(segment_facts.active_respondents, 0) as double)
            / nullif(segment_days.mau, 0) as survey_response_rate,
        cast(coalesce(segment_facts.complaint_tickets, 0) as double)
            / nullif(segment_days.mau, 0) as complaints_per_active_user,
        cast(segment_facts.first_reply_seconds as double)
            / nullif(segment_facts.replied_tickets, 0) / 3600 as first_reply_hours,
        cast(segment_facts.resolution_seconds as double)
            / nullif(segment_facts.resolved_tickets, 0) / 3600 as resolution_hours
    from segment_days
    left join segment_facts
        on segment_days.metric_date = segment_facts.metric_date
        and segment_days.segment_dimension = segment_facts.segment_dimension
        and segment_days.segment_value = segment_facts.segment_value
),

unpivoted as (
    {%- for metric_code in ['nps', 'csat', 'survey_response_rate', 'complaints_per_active_user', 'first_reply_hours', 'resolution_hours'] %}
    select
        metric_date,
        '{{ metric_code }}' as metric_code,
        segment_dimension as dimension,
        segment_value as dimension_value,
        cast({{ metric_code }} as double) as metric_value
    from metrics
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

final as (
    select
        metric_date,
        metric_code,
        dimension,
        dimension_value,
        metric_value
    from unpivoted
)

select * from final
