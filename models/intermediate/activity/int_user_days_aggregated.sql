-- One row per user and business day with any activity or order: the shared base of activity,
-- layer, retention and metric models, so raw-grain events are scanned once.
with

events as (
    select * from {{ ref('stg_landing__events') }}
),

orders as (
    select * from {{ ref('stg_landing__orders') }}
),

event_days as (
    select
        user_id,
        event_date as activity_date,
        count(*) as event_count,
        count(*) filter (where is_active_event) as active_event_count,
        count(distinct session_id) as session_count,
        min(event_at) filter (where is_active_event) as first_active_event_at
    from events
    group by user_id, event_date
),

order_days as (
    select
        user_id,
        order_date as activity_date,
        count(*) as order_count,
        count(*) filter (where is_paid) as paid_order_count,
        coalesce(sum(amount) filter (where is_paid), 0) as paid_amount,
        count(*) filter (where is_paid and has_coupon) as coupon_order_count
    from orders
    group by user_id, order_date
),

final as (
    select
        coalesce(event_days.user_id, order_days.user_id) as user_id,
        coalesce(event_days.activity_date, order_days.activity_date) as activity_date,
        coalesce(event_days.event_count, 0) as event_count,
        coalesce(event_days.active_event_count, 0) as active_event_count,
        coalesce(event_days.session_count, 0) as session_count,
        coalesce(order_days.order_count, 0) as order_count,
        coalesce(order_days.paid_order_count, 0) as paid_order_count,
        coalesce(order_days.paid_amount, 0) as paid_amount,
        coalesce(order_days.coupon_order_count, 0) as coupon_order_count,
        -- Active = an event that counts as active (seeds/event_mapping.csv) or a paid order, so
        -- an orders-only log still has active users.
        coalesce(event_days.active_event_count, 0) > 0
        or coalesce(order_days.paid_order_count, 0) > 0 as is_active,
        coalesce(order_days.paid_order_count, 0) > 0 as has_paid_order
    from event_days
    full outer join order_days
        on event_days.user_id = order_days.user_id
        and event_days.activity_date = order_days.activity_date
)

select * from final
