-- Custom-interval retention (区间留存): per interval of seeds/retention_intervals.csv and signup
-- day, the share of the day's new users active on at least one day from day n to day m after
-- signup. A single-day interval (n = m, e.g. d7) read over signup_date is the Dn trend.
with

users as (
    select * from {{ ref('users') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

retention_intervals as (
    select * from {{ ref('retention_intervals') }}
),

data_dates as (
    select max(activity_date) as latest_data_date
    from user_days
),

signups as (
    select user_id, signup_date
    from users
    where signup_date is not null
),

cohorts as (
    select signup_date, count(*) as cohort_users
    from signups
    group by signup_date
),

active_days as (
    select
        signups.user_id,
        signups.signup_date,
        {{ days_between('signups.signup_date', 'user_days.activity_date') }} as day_number
    from signups
    inner join user_days
        on signups.user_id = user_days.user_id
        and signups.signup_date < user_days.activity_date
    where user_days.is_active
),

returned as (
    select
        retention_intervals.interval_code,
        active_days.signup_date,
        count(distinct active_days.user_id) as returned_users
    from active_days
    inner join retention_intervals
        on active_days.day_number between retention_intervals.start_day and retention_intervals.end_day
    group by retention_intervals.interval_code, active_days.signup_date
),

cells as (
    select
        retention_intervals.interval_code,
        retention_intervals.start_day,
        retention_intervals.end_day,
        cohorts.signup_date,
        cohorts.cohort_users,
        cast({{ dbt.dateadd('day', 'retention_intervals.start_day', 'cohorts.signup_date') }} as date)
            as window_start_date,
        cast({{ dbt.dateadd('day', 'retention_intervals.end_day', 'cohorts.signup_date') }} as date)
            as window_end_date
    from cohorts
    cross join retention_intervals
),

final as (
    select
        cells.interval_code,
        cells.signup_date,
        cast(cells.start_day as integer) as start_day,
        cast(cells.end_day as integer) as end_day,
        cells.window_start_date,
        cells.window_end_date,
        cast(cells.cohort_users as bigint) as cohort_users,
        cast(coalesce(returned.returned_users, 0) as bigint) as returned_users,
        cast(coalesce(returned.returned_users, 0) as double) / cells.cohort_users as retention_rate,
        cells.window_end_date > data_dates.latest_data_date as is_provisional
    from cells
    cross join data_dates
    left join returned
        on cells.interval_code = returned.interval_code
        and cells.signup_date = returned.signup_date
    -- Only windows that have started by the latest data date.
    where cells.window_start_date <= data_dates.latest_data_date
)

select * from final
