-- Every user the data knows: registered users from the users table, plus users that only appear
-- in orders or events (an orders-only log has no users table), whose signup is their first
-- activity.
with

users as (
    select * from {{ ref('stg_landing__users') }}
),

orders as (
    select * from {{ ref('stg_landing__orders') }}
),

-- Events through their user-day aggregate (one row per user and day) rather than every event.
user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

first_orders as (
    select
        user_id,
        min(ordered_at) as first_ordered_at
    from orders
    group by user_id
),

first_events as (
    select
        user_id,
        min(first_event_at) as first_event_at
    from user_days
    where first_event_at is not null
    group by user_id
),

first_activity as (
    select
        coalesce(first_orders.user_id, first_events.user_id) as user_id,
        first_orders.first_ordered_at,
        first_events.first_event_at,
        least(
            coalesce(first_orders.first_ordered_at, first_events.first_event_at),
            coalesce(first_events.first_event_at, first_orders.first_ordered_at)
        ) as first_seen_at
    from first_orders
    full outer join first_events
        on first_orders.user_id = first_events.user_id
),

final as (
    select
        coalesce(users.user_id, first_activity.user_id) as user_id,
        coalesce(users.signup_at, first_activity.first_seen_at) as signup_at,
        coalesce(users.signup_date, {{ to_business_date('first_activity.first_seen_at') }}) as signup_date,
        coalesce(users.acquisition_channel, 'unknown') as acquisition_channel,
        coalesce(users.platform, 'unknown') as platform,
        coalesce(users.gender, 'unknown') as gender,
        users.birth_year,
        users.city,
        users.city_tier,
        first_activity.first_ordered_at,
        {{ to_business_date('first_activity.first_ordered_at') }} as first_order_date,
        first_activity.first_event_at,
        users.user_id is null as is_derived_from_activity
    from users
    full outer join first_activity
        on users.user_id = first_activity.user_id
)

select * from final
