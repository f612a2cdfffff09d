-- Value cohorts reconcile with the orders: per cohort grain, the GMV of the `all` cells equals
-- the paid amount of the staged orders of users with a signup day, and the channels add up to
-- `all` in every cell. Rows returned = failures.
-- A check of value_cohorts in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'value_cohorts'}}}) }}
with

value_cohorts as (
    select * from {{ ref('value_cohorts') }}
),

orders as (
    select * from {{ ref('stg_landing__orders') }}
),

users as (
    select * from {{ ref('users') }}
),

order_gmv as (
    select sum(cast(orders.amount as decimal(38, 2))) as gmv
    from orders
    inner join users
        on orders.user_id = users.user_id
    where orders.is_paid and users.signup_date is not null
),

grain_gmv as (
    select
        cohort_grain,
        sum(cast(period_gmv as decimal(38, 2))) as gmv
    from value_cohorts
    where acquisition_channel = 'all'
    group by cohort_grain
),

channel_sums as (
    select
        cohort_grain,
        cohort_start_date,
        period_number,
        sum(case when acquisition_channel = 'all' then period_gmv else 0 end) as all_gmv,
        sum(case when acquisition_channel != 'all' then period_gmv else 0 end) as channel_gmv,
        sum(case when acquisition_channel = 'all' then cohort_users else 0 end) as all_users,
        sum(case when acquisition_channel != 'all' then cohort_users else 0 end) as channel_users
    from value_cohorts
    group by cohort_grain, cohort_start_date, period_number
),

failures as (
    select
        'grain_gmv' as failure,
        grain_gmv.cohort_grain,
        null as cohort_start_date
    from grain_gmv
    cross join order_gmv
    where abs(grain_gmv.gmv - coalesce(order_gmv.gmv, 0)) > 0.01

    union all

    select
        'channels_vs_all' as failure,
        cohort_grain,
        cohort_start_date
    from channel_sums
    where
        abs(all_gmv - channel_gmv) > 0.01
        or all_users != channel_users
)

select * from failures
