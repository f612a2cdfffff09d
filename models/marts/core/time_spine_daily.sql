-- One row per calendar day: MetricFlow's time spine and the calendar every dated mart can join.
-- It starts at var time_spine_start, or earlier when var min_valid_timestamp admits older rows:
-- the day before the floor's date, so a business day behind UTC (business_timezone west of
-- Greenwich) of the earliest admitted timestamp has its row too. A log older than the default
-- floor then needs only the one var lowered (docs/landing_contract.md).
{%- set floor_day = modules.datetime.date.fromisoformat((var('min_valid_timestamp') | string)[:10]) %}
{%- set spine_start = [
    modules.datetime.date.fromisoformat((var('time_spine_start') | string)[:10]),
    floor_day - modules.datetime.timedelta(days=1),
] | min %}
with

days as (
    {{ dbt.date_spine(
        datepart="day",
        start_date="cast('" ~ spine_start.isoformat() ~ "' as date)",
        end_date="cast('" ~ var('time_spine_end') ~ "' as date)",
    ) }}
),

final as (
    select cast(date_day as date) as date_day
    from days
)

select * from final
