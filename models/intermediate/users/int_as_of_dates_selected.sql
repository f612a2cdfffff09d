-- The as-of dates of layers and tags: the last day of every week and every month that has data
-- (the latest data day for the current, unfinished week or month), over the last
-- layers_history_days days of data. Weekly plus monthly closes keep user x date marts affordable
-- (about 22 dates for 120 days of data) while week and month migrations stay exact.
with

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

time_spine as (
    select * from {{ ref('time_spine_daily') }}
),

data_range as (
    select
        max(activity_date) as latest_data_date,
        min(activity_date) as first_data_date
    from user_days
),

history_range as (
    select
        latest_data_date,
        case
            when first_data_date > cast({{ dbt.dateadd('day', -1 * var('layers_history_days'), 'latest_data_date') }} as date)
                then first_data_date
            else cast({{ dbt.dateadd('day', -1 * var('layers_history_days'), 'latest_data_date') }} as date)
        end as first_history_date
    from data_range
),

days as (
    select
        time_spine.date_day,
        history_range.latest_data_date
    from time_spine
    inner join history_range
        on time_spine.date_day between history_range.first_history_date
        and history_range.latest_data_date
),

period_closes as (
    select
        date_day,
        latest_data_date,
        cast({{ dbt.last_day('date_day', 'week') }} as date) as week_last_day,
        cast({{ dbt.last_day('date_day', 'month') }} as date) as month_last_day
    from days
),

closes as (
    select
        date_day,
        date_day = week_last_day or date_day = latest_data_date as is_week_close,
        date_day = month_last_day or date_day = latest_data_date as is_month_close,
        date_day = latest_data_date as is_latest
    from period_closes
),

final as (
    select
        date_day as as_of_date,
        is_week_close,
        is_month_close,
        is_latest,
        row_number() over (order by date_day) as as_of_index
    from closes
    where is_week_close or is_month_close
)

select * from final
