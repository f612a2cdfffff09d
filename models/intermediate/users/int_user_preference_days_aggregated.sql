-- One row per user, business day, preference type and value: what the user bought or looked at
-- (category) and where they were active (platform), ranked by int_users_as_of_aggregated into
-- top category and preferred platform. Categories come from paid order items (amount) and from
-- active events carrying a category (count); platforms from active events.
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

orders as (
    select * from {{ ref('stg_landing__orders') }}
    {{ day_window_where('order_date') }}
),

order_items as (
    select * from {{ ref('stg_landing__order_items') }}
),

purchased_categories as (
    select
        orders.user_id,
        orders.order_date as activity_date,
        'category' as preference_type,
        order_items.category as preference_value,
        sum(order_items.line_amount) as paid_amount,
        0 as event_count
    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    where orders.is_paid
    group by orders.user_id, orders.order_date, order_items.category
),

viewed_categories as (
    select
        user_id,
        event_date as activity_date,
        'category' as preference_type,
        category as preference_value,
        0 as paid_amount,
        count(*) as event_count
    from events
    where is_active_event
        and category is not null
    group by user_id, event_date, category
),

used_platforms as (
    select
        user_id,
        event_date as activity_date,
        'platform' as preference_type,
        platform as preference_value,
        0 as paid_amount,
        count(*) as event_count
    from events
    where is_active_event
        and platform is not null
    group by user_id, event_date, platform
),

unioned as (
    select * from purchased_categories
    union all
    select * from viewed_categories
    union all
    select * from used_platforms
),

final as (
    select
        user_id,
        activity_date,
        preference_type,
        preference_value,
        sum(paid_amount) as paid_amount,
        sum(event_count) as event_count
    from unioned
    group by user_id, activity_date, preference_type, preference_value
)

select * from final
