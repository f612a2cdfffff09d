-- One row per user and business day with a referral or preference event: the event counts the
-- metric system needs beyond int_user_days_aggregated. Referral conversions are credited to
-- the inviting user (referrer_user_id) on the day the invited user signed up.
-- Incremental by business day (macros/incremental/day_windows.sql): a day-partitioned run
-- recomputes only its window's days.
{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[day_window_delete_hook('activity_date')],
    )
}}

with

-- Read twice below: inlined, so DuckDB scans the view twice instead of storing every event.
events as {{ inline_cte() }} (
    select * from {{ ref('stg_landing__events') }}
    {{ day_window_where('event_date') }}
),

own_events as (
    select
        user_id,
        event_date as activity_date,
        count(case when event_name = 'share' then 1 end) as share_count,
        count(case when event_name = 'search' then 1 end) as search_count,
        count(case when event_name = 'add_to_cart' then 1 end) as add_to_cart_count,
        0 as referral_conversion_count
    from events
    where event_name in ('share', 'search', 'add_to_cart')
    group by user_id, event_date
),

referrals as (
    select
        referrer_user_id as user_id,
        event_date as activity_date,
        0 as share_count,
        0 as search_count,
        0 as add_to_cart_count,
        count(*) as referral_conversion_count
    from events
    where event_name = 'referral_signup'
        and referrer_user_id is not null
    group by referrer_user_id, event_date
),

combined as (
    select * from own_events
    union all
    select * from referrals
),

final as (
    select
        user_id,
        activity_date,
        sum(share_count) as share_count,
        sum(search_count) as search_count,
        sum(add_to_cart_count) as add_to_cart_count,
        sum(referral_conversion_count) as referral_conversion_count
    from combined
    group by user_id, activity_date
)

select * from final
