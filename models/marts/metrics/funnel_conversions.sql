-- Funnels from seeds/funnels.csv (+ funnel_settings, funnel_exclusions): one row per funnel,
-- entry day and step, from int_funnel_steps_reached (order modes, held properties, step windows
-- and exclusions are decided there; docs/funnels.md).
--
-- Incremental by entry day. A day-partitioned run (vars start_date / end_date) recomputes the
-- entry days whose attempts can reach into its window or were provisional: from the window's
-- first day (start_date - incremental_lookback_days) back by the longest conversion window in
-- whole days plus one (attempts entered late on a day). The pre-hook deletes those entry days.
-- Without the vars every run recomputes all days; do that after editing the funnel seeds.
{%- set first_entry_date = funnel_first_entry_date() %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[funnel_entry_delete_hook()],
    )
}}

with

funnels as (
    select * from {{ ref('funnels') }}
),

steps_reached as (
    select * from {{ ref('int_funnel_steps_reached') }}
    {%- if first_entry_date is not none %}
    where entry_date >= cast('{{ first_entry_date }}' as date)
    {%- endif %}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

data_dates as (
    select max(activity_date) as latest_data_date
    from user_days
),

step_counts as (
    select
        funnel_code,
        entry_date,
        step_number,
        count(*) as users,
        {{ percentile_cont_value('minutes_to_convert', 0.25) }} as p25_minutes_to_convert,
        {{ percentile_cont_value('minutes_to_convert', 0.5) }} as median_minutes_to_convert,
        {{ percentile_cont_value('minutes_to_convert', 0.75) }} as p75_minutes_to_convert,
        {{ percentile_cont_value('minutes_to_convert', 0.9) }} as p90_minutes_to_convert
    from steps_reached
    where not is_excluded
    group by funnel_code, entry_date, step_number
),

-- Every attempt has a step-1 row, excluded or not.
entry_days as (
    select
        funnel_code,
        entry_date,
        sum(case when is_excluded then 1 else 0 end) as excluded_attempts
    from steps_reached
    where step_number = 1
    group by funnel_code, entry_date
),

grid as (
    select
        entry_days.funnel_code,
        entry_days.entry_date,
        entry_days.excluded_attempts,
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
        grid.excluded_attempts,
        coalesce(step_counts.users, 0) as users,
        step_counts.p25_minutes_to_convert,
        step_counts.median_minutes_to_convert,
        step_counts.p75_minutes_to_convert,
        step_counts.p90_minutes_to_convert
    from grid
    left join step_counts
        on grid.funnel_code = step_counts.funnel_code
        and grid.entry_date = step_counts.entry_date
        and grid.step_number = step_counts.step_number
),

-- Percentiles rounded to 6 decimals (well under a second): interpolation leaves float noise
-- that differs between engines.
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
        cast(round(counted.median_minutes_to_convert, 6) as double) as median_minutes_to_convert,
        -- Attempts entered late on the day may still convert after the latest data date.
        {{ dbt.dateadd('hour', 'counted.conversion_window_hours', dbt.dateadd('day', 1, 'counted.entry_date')) }}
            > {{ dbt.dateadd('day', 1, 'data_dates.latest_data_date') }} as is_provisional,
        cast(round(counted.p25_minutes_to_convert, 6) as double) as p25_minutes_to_convert,
        cast(round(counted.p75_minutes_to_convert, 6) as double) as p75_minutes_to_convert,
        cast(round(counted.p90_minutes_to_convert, 6) as double) as p90_minutes_to_convert,
        cast(counted.excluded_attempts as bigint) as excluded_attempts
    from counted
    cross join data_dates
)

select * from final
