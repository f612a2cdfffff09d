-- One row per user and business day with events: the event counts that tags need and
-- int_user_days_aggregated does not carry (night use, searches, push deliveries and clicks).
-- Empty for an orders-only data set.
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

events as (
    select * from {{ ref('stg_landing__events') }}
    {{ day_window_where('event_date') }}
),

events_local as (
    select
        user_id,
        event_date,
        event_name,
        is_active_event,
        extract(hour from {{ to_business_timestamp('event_at') }}) as business_hour
    from events
),

final as (
    select
        user_id,
        event_date as activity_date,
        count(*) filter (
            where is_active_event
            and (
                business_hour >= {{ var('tag_night_start_hour') }}
                or business_hour < {{ var('tag_night_end_hour') }}
            )
        ) as night_active_event_count,
        count(*) filter (where event_name = 'search') as search_count,
        count(*) filter (where event_name = 'push_receive') as push_receive_count,
        count(*) filter (where event_name = 'push_click') as push_click_count
    from events_local
    group by user_id, event_date
)

select * from final
