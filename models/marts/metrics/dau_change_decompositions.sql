-- Why DAU moved: day over day and week over week, DAU(t) - DAU(t - lag) split exactly into
-- new + resurrected - newly dormant users. One row per (metric_date, comparison).
{%- set comparisons = {'day_over_day': 1, 'week_over_week': 7} %}
{#- Incremental by metric day: a day-partitioned run recomputes the days of its window (from
    start_date - incremental_lookback_days on) from their active days and those of the longest
    comparison before; a day's row depends on nothing later. -#}
{%- set window_start = day_window_start() %}
{%- set incremental_run = is_incremental() and window_start is not none %}
{%- set max_lag = comparisons.values() | max %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[windowed_delete_hook(
            "delete from {{ this }} where metric_date >= " ~ window_start
        )],
    )
}}

with

user_days as {{ inline_cte() }} (
    select * from {{ ref('int_user_days_aggregated') }}
),

time_spine as (
    select * from {{ ref('time_spine_daily') }}
),

active_days as (
    select user_id, activity_date
    from user_days
    where is_active
    {%- if incremental_run %}
        and activity_date >= cast({{ dbt.dateadd('day', -max_lag, window_start) }} as date)
    {%- endif %}
),

-- From every active day (active_days is cut to the window in a partitioned run).
first_active_days as (
    select user_id, min(activity_date) as first_active_date
    from user_days
    where is_active
    group by user_id
),

data_dates as (
    select
        min(activity_date) as first_data_date,
        max(activity_date) as latest_data_date
    from user_days
),

calendar as (
    select time_spine.date_day as metric_date
    from time_spine
    cross join data_dates
    where time_spine.date_day between data_dates.first_data_date and data_dates.latest_data_date
    {%- if incremental_run %}
        and time_spine.date_day >= {{ window_start }}
    {%- endif %}
),

user_states as (
    -- Each user active on the day or on the comparison day, with where they were active.
    {%- for comparison, lag_days in comparisons.items() %}
    select
        '{{ comparison }}' as comparison,
        coalesce(
            current_day.activity_date,
            cast({{ dbt.dateadd('day', lag_days, 'comparison_day.activity_date') }} as date)
        ) as metric_date,
        coalesce(current_day.user_id, comparison_day.user_id) as user_id,
        current_day.user_id is not null as is_active_now,
        comparison_day.user_id is not null as was_active_then
    from active_days as current_day
    full outer join active_days as comparison_day
        on current_day.user_id = comparison_day.user_id
        and current_day.activity_date
            = cast({{ dbt.dateadd('day', lag_days, 'comparison_day.activity_date') }} as date)
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

classified as (
    select
        user_states.comparison,
        user_states.metric_date,
        user_states.is_active_now,
        user_states.was_active_then,
        -- New: first ever active day within (comparison day, day]; resurrected: active before.
        case
            when user_states.is_active_now and not user_states.was_active_then
                and first_active_days.first_active_date > case user_states.comparison
                    {%- for comparison, lag_days in comparisons.items() %}
                    when '{{ comparison }}' then cast({{ dbt.dateadd('day', -lag_days, 'user_states.metric_date') }} as date)
                    {%- endfor %}
                end
                then 'new'
            when user_states.is_active_now and not user_states.was_active_then then 'resurrected'
            when user_states.is_active_now then 'retained'
            else 'newly_dormant'
        end as user_state
    from user_states
    inner join first_active_days
        on user_states.user_id = first_active_days.user_id
),

counted as (
    select
        comparison,
        metric_date,
        count(case when is_active_now then 1 end) as dau,
        count(case when was_active_then then 1 end) as comparison_dau,
        count(case when user_state = 'retained' then 1 end) as retained_users,
        count(case when user_state = 'new' then 1 end) as new_users,
        count(case when user_state = 'resurrected' then 1 end) as resurrected_users,
        count(case when user_state = 'newly_dormant' then 1 end) as newly_dormant_users
    from classified
    group by comparison, metric_date
),

grid as (
    {%- for comparison, lag_days in comparisons.items() %}
    select
        '{{ comparison }}' as comparison,
        metric_date,
        cast({{ dbt.dateadd('day', -lag_days, 'metric_date') }} as date) as comparison_date
    from calendar
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

final as (
    select
        grid.metric_date,
        grid.comparison,
        grid.comparison_date,
        cast(coalesce(counted.dau, 0) as bigint) as dau,
        cast(coalesce(counted.comparison_dau, 0) as bigint) as comparison_dau,
        cast(coalesce(counted.dau, 0) - coalesce(counted.comparison_dau, 0) as bigint) as dau_change,
        cast(coalesce(counted.retained_users, 0) as bigint) as retained_users,
        cast(coalesce(counted.new_users, 0) as bigint) as new_users,
        cast(coalesce(counted.resurrected_users, 0) as bigint) as resurrected_users,
        cast(coalesce(counted.newly_dormant_users, 0) as bigint) as newly_dormant_users
    from grid
    left join counted
        on grid.comparison = counted.comparison
        and grid.metric_date = counted.metric_date
)

select * from final
