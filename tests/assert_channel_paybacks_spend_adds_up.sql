-- Every staged marketing spend is in channel_paybacks: per cohort grain, the channel rows' spend
-- equals the staged total, and so does the `all` rows'. Rows returned = failures.
-- A check of channel_paybacks in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'channel_paybacks'}}}) }}
with

channel_paybacks as (
    select * from {{ ref('channel_paybacks') }}
),

marketing_spend as (
    select * from {{ ref('stg_landing__marketing_spend') }}
),

staged as (
    select coalesce(sum(cast(spend as decimal(38, 2))), 0) as spend
    from marketing_spend
),

grain_spend as (
    select
        cohort_grain,
        sum(case when acquisition_channel != 'all' then cast(marketing_spend as decimal(38, 2)) else 0 end)
            as channel_spend,
        sum(case when acquisition_channel = 'all' then cast(marketing_spend as decimal(38, 2)) else 0 end)
            as all_spend
    from channel_paybacks
    group by cohort_grain
),

failures as (
    select grain_spend.*
    from grain_spend
    cross join staged
    where
        abs(grain_spend.channel_spend - staged.spend) > 0.01
        or abs(grain_spend.all_spend - staged.spend) > 0.01
)

select * from failures
