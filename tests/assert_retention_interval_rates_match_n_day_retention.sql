-- A single-day interval is the standard Dn: d1 and d7 of retention_interval_rates equal the
-- overall D1/D7 of n_day_retention_rates (two implementations of the same definition) on every
-- signup day where both exist, and the cohort sizes equal new users. Rows returned = failures.
-- A check of retention_interval_rates in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'retention_interval_rates'}}}) }}
with

interval_rates as (
    select * from {{ ref('retention_interval_rates') }}
),

n_day as (
    select * from {{ ref('n_day_retention_rates') }}
    where segment_dimension = 'overall'
),

compared as (
    select
        interval_rates.interval_code,
        interval_rates.signup_date,
        interval_rates.cohort_users,
        n_day.new_users,
        interval_rates.returned_users,
        case interval_rates.interval_code
            when 'd1' then n_day.d1_retained_users
            when 'd7' then n_day.d7_retained_users
        end as n_day_retained_users
    from interval_rates
    inner join n_day
        on interval_rates.signup_date = n_day.signup_date
    where
        interval_rates.start_day = interval_rates.end_day
        and interval_rates.start_day in (1, 7)
),

failures as (
    select *
    from compared
    where
        cohort_users != new_users
        or (n_day_retained_users is not null and returned_users != n_day_retained_users)
)

select * from failures
