-- One row per day: the as-of date of the layers (user_layers) that hold for a period starting
-- that day. Point in time: the latest as-of date strictly before the day, i.e. the layer at the
-- close of the previous day, so a period's own behaviour never decides its layer.
with

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

time_spine as (
    select * from {{ ref('time_spine_daily') }}
),

data_dates as (
    select
        min(activity_date) as first_data_date,
        max(activity_date) as latest_data_date
    from user_days
),

days as (
    -- From a month before the first data day (week and month cohorts start before it) to the
    -- latest data day.
    select time_spine.date_day
    from time_spine
    cross join data_dates
    where time_spine.date_day
        between cast({{ dbt.dateadd('day', -31, 'data_dates.first_data_date') }} as date)
        and data_dates.latest_data_date
),

final as (
    select
        days.date_day,
        max(as_of_dates.as_of_date) as layer_as_of_date
    from days
    left join as_of_dates
        on as_of_dates.as_of_date < days.date_day
    group by days.date_day
)

select * from final
