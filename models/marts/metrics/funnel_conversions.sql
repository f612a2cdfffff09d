-- Funnels from seeds/funnels.csv: one row per funnel, entry day and step.
--
-- Incremental by entry day. A day-partitioned run (vars start_date / end_date) recomputes the
-- entry days whose attempts can reach into its window or were provisional: from the window's
-- first day (start_date - incremental_lookback_days) back by the longest conversion window in
-- whole days plus one (attempts entered late on a day). It reads only the events from there on;
-- the pre-hook deletes those entry days. Without the vars every run recomputes all days; do that
-- after editing seeds/funnels.csv.
{%- set max_steps = var('funnel_max_steps') %}
{%- set first_entry_sql -%}
    cast({{ dbt.dateadd('day', '-(cast(ceil(max(conversion_window_hours) / 24.0) as integer) + 1)', day_window_start() or 'current_date') }} as date)
{%- endset %}
{%- set first_entry_date = none %}
{%- if execute and is_incremental() and day_window_start() is not none %}
    {%- set first_entry_date = run_query('select ' ~ first_entry_sql ~ ' from ' ~ ref('funnels')).columns[0].values()[0] %}
{%- endif %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[windowed_delete_hook(
            "delete from {{ this }} where entry_date >= (select " ~ first_entry_sql
            ~ " from {{ ref('funnels') }})"
        )],
    )
}}

with

funnels as (
    select * from {{ ref('funnels') }}
),

events as (
    select * from {{ ref('stg_landing__events') }}
    {%- if first_entry_date is not none %}
    where event_date >= cast('{{ first_entry_date }}' as date)
    {%- endif %}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

data_dates as (
    select max(activity_date) as latest_data_date
    from user_days
),

funnel_events as (
    select
        funnels.funnel_code,
        funnels.step_number,
        funnels.conversion_window_hours,
        events.user_id,
        events.event_at,
        events.event_date
    from events
    inner join funnels
        on events.event_name = funnels.event_name
),

-- One attempt per user, funnel and business day, starting at the day's first step-1 event.
step_1 as (
    select
        funnel_code,
        user_id,
        event_date as entry_date,
        min(event_at) as entered_at,
        max(conversion_window_hours) as conversion_window_hours,
        min(event_at) as reached_at
    from funnel_events
    where step_number = 1
    group by funnel_code, user_id, event_date
),

{%- for step in range(2, max_steps + 1) %}

-- Step {{ step }}: the first step-{{ step }} event at or after step {{ step - 1 }}, within the window.
step_{{ step }} as (
    select
        previous_step.funnel_code,
        previous_step.user_id,
        previous_step.entry_date,
        previous_step.entered_at,
        previous_step.conversion_window_hours,
        min(funnel_events.event_at) as reached_at
    from step_{{ step - 1 }} as previous_step
    inner join funnel_events
        on previous_step.funnel_code = funnel_events.funnel_code
        and previous_step.user_id = funnel_events.user_id
        and funnel_events.step_number = {{ step }}
        and funnel_events.event_at >= previous_step.reached_at
        and funnel_events.event_at
            <= {{ dbt.dateadd('hour', 'previous_step.conversion_window_hours', 'previous_step.entered_at') }}
    group by
        previous_step.funnel_code, previous_step.user_id, previous_step.entry_date,
        previous_step.entered_at, previous_step.conversion_window_hours
),
{%- endfor %}

reached_steps as (
    {%- for step in range(1, max_steps + 1) %}
    select {{ step }} as step_number, funnel_code, user_id, entry_date, entered_at, reached_at
    from step_{{ step }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

step_counts as (
    select
        funnel_code,
        entry_date,
        step_number,
        count(*) as users,
        {{ exact_median(dbt.datediff('entered_at', 'reached_at', 'second')) }} / 60.0
            as median_minutes_to_convert
    from reached_steps
    group by funnel_code, entry_date, step_number
),

entry_days as (
    select distinct funnel_code, entry_date
    from step_1
),

grid as (
    select
        entry_days.funnel_code,
        entry_days.entry_date,
        funnels.step_number,
        funnels.event_name,
        funnels.conversion_window_hours
    from entry_days
    inner join funnels
        on entry_days.funnel_code = funnels.funnel_code
),

counted as (
    select
        grid.funnel_code,
        grid.entry_date,
        grid.step_number,
        grid.event_name,
        grid.conversion_window_hours,
        coalesce(step_counts.users, 0) as users,
        step_counts.median_minutes_to_convert
    from grid
    left join step_counts
        on grid.funnel_code = step_counts.funnel_code
        and grid.entry_date = step_counts.entry_date
        and grid.step_number = step_counts.step_number
),

final as (
    select
        counted.funnel_code,
        counted.entry_date,
        counted.step_number,
        counted.event_name,
        cast(counted.users as bigint) as users,
        {{ safe_ratio('counted.users', 'lag(counted.users) over (partition by counted.funnel_code, counted.entry_date order by counted.step_number)') }}
            as step_conversion_rate,
        {{ safe_ratio('counted.users', 'first_value(counted.users) over (partition by counted.funnel_code, counted.entry_date order by counted.step_number)') }}
            as overall_conversion_rate,
        cast(counted.median_minutes_to_convert as double) as median_minutes_to_convert,
        -- Attempts entered late on the day may still convert after the latest data date.
        {{ dbt.dateadd('hour', 'counted.conversion_window_hours', dbt.dateadd('day', 1, 'counted.entry_date')) }}
            > {{ dbt.dateadd('day', 1, 'data_dates.latest_data_date') }} as is_provisional
    from counted
    cross join data_dates
)

select * from final
