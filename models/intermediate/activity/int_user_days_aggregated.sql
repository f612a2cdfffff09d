-- One row per user and business day with any activity or order: the shared base of activity,
-- layer, retention and metric models, so raw-grain events are scanned once.
--
-- Incremental. A day-partitioned run (window start_date / end_date, end exclusive)
-- recomputes the business days [start_date - incremental_lookback_days, end_date): the pre-hook
-- deletes those days and the model inserts them again, so a rerun of a day is idempotent and late
-- rows within the lookback are picked up. Without those vars (plain `dbt build`, the CLI) every
-- run recomputes all history, as a table would, so regenerated or re-imported data never leaves
-- stale days behind. Engines without row deletes on plain tables (Spark with parquet) build it as
-- a table, i.e. always recompute all history (incremental_deletes_supported, macros/cross_db).
{%- set lookback = var('incremental_lookback_days') -%}
{%- set start_date = window_start_date() -%}
{%- set end_date = window_end_date() -%}
{%- set window_start = dbt.dateadd('day', -lookback, "cast('" ~ start_date ~ "' as date)") if start_date else none -%}
{%- set window_end = "cast('" ~ end_date ~ "' as date)" if end_date else none -%}
{#- The hook is rendered when it runs, so `this` and is_incremental() are the run's. -#}
{%- set delete_rows = "delete from {{ this }}" -%}
{%- if start_date -%}
    {%- set delete_rows = delete_rows ~ " where activity_date >= " ~ window_start
        ~ (" and activity_date < " ~ window_end if window_end else "") -%}
{%- endif %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='delete+insert',
        unique_key=['user_id', 'activity_date'],
        on_schema_change='fail',
        pre_hook=["{% if is_incremental() %}" ~ delete_rows ~ "{% endif %}"],
    )
}}

with

events as (
    select * from {{ ref('stg_landing__events') }}
),

orders as (
    select * from {{ ref('stg_landing__orders') }}
),

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

event_days as (
    select
        user_id,
        event_date as activity_date,
        count(*) as event_count,
        count(*) filter (where is_active_event) as active_event_count,
        min(event_at) filter (where is_active_event) as first_active_event_at,
        min(event_at) as first_event_at
    from events
    {% if is_incremental() and start_date -%}
    where event_date >= {{ window_start }}
        {%- if window_end %} and event_date < {{ window_end }}{% endif %}
    {% endif -%}
    group by user_id, event_date
),

-- Sessions are the sessions mart's (int_events_sessionised: the given session_id, else the
-- inactivity gap rule), each counted once, on the business day it starts: summed over days
-- they are the sessions mart's rows, and a session running past midnight is one session.
session_days as (
    select
        user_id,
        event_date as activity_date,
        count(*) as session_count
    from session_events
    where session_event_number = 1
    {% if is_incremental() and start_date -%}
        and event_date >= {{ window_start }}
        {%- if window_end %} and event_date < {{ window_end }}{% endif %}
    {% endif -%}
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
    {% if is_incremental() and start_date -%}
    where order_date >= {{ window_start }}
        {%- if window_end %} and order_date < {{ window_end }}{% endif %}
    {% endif -%}
    group by user_id, order_date
),

final as (
    select
        coalesce(event_days.user_id, order_days.user_id) as user_id,
        coalesce(event_days.activity_date, order_days.activity_date) as activity_date,
        coalesce(event_days.event_count, 0) as event_count,
        coalesce(event_days.active_event_count, 0) as active_event_count,
        coalesce(session_days.session_count, 0) as session_count,
        coalesce(order_days.order_count, 0) as order_count,
        coalesce(order_days.paid_order_count, 0) as paid_order_count,
        coalesce(order_days.paid_amount, 0) as paid_amount,
        coalesce(order_days.coupon_order_count, 0) as coupon_order_count,
        event_days.first_event_at,
        -- Active = an event that counts as active (seeds/event_mapping.csv) or a paid order, so
        -- an orders-only log still has active users.
        coalesce(event_days.active_event_count, 0) > 0
        or coalesce(order_days.paid_order_count, 0) > 0 as is_active,
        coalesce(order_days.paid_order_count, 0) > 0 as has_paid_order
    from event_days
    full outer join order_days
        on
            event_days.user_id = order_days.user_id
            and event_days.activity_date = order_days.activity_date
    -- A session starts with a user action, so its start day is one of the event days.
    left join session_days
        on
            event_days.user_id = session_days.user_id
            and event_days.activity_date = session_days.activity_date
)

select * from final
