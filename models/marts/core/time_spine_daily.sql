-- One row per calendar day: MetricFlow's time spine and the calendar every dated mart can join.
with

days as (
    {{ dbt.date_spine(
        datepart="day",
        start_date="cast('" ~ var('time_spine_start') ~ "' as date)",
        end_date="cast('" ~ var('time_spine_end') ~ "' as date)",
    ) }}
),

final as (
    select cast(date_day as date) as date_day
    from days
)

select * from final
