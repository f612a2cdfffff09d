-- One row per session (user_id, session_id) of user actions: start, end, events and whether
-- it converted (holds one of session_converting_events). Sessionising is
-- int_events_sessionised's (given session_id, else the inactivity gap rule).
{%- set converting_events = var('session_converting_events') %}

with

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

aggregated as (
    select
        user_id,
        session_id,
        max(case when is_derived_session then 1 else 0 end) = 1 as is_derived_session,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        count(*) as event_count,
        max(case when session_event_number = 1 then event_date end) as session_date,
        max(case when session_event_number = 1 then event_name end) as first_event_name,
        max(
            case
                when event_name in ('{{ converting_events | join("', '") }}') then 1
                else 0
            end
        ) = 1 as is_converting
    from session_events
    group by user_id, session_id
),

last_events as (
    select
        session_events.user_id,
        session_events.session_id,
        session_events.event_name as last_event_name
    from session_events
    inner join aggregated
        on session_events.user_id = aggregated.user_id
        and session_events.session_id = aggregated.session_id
        and session_events.session_event_number = aggregated.event_count
),

final as (
    select
        aggregated.session_id,
        aggregated.user_id,
        aggregated.is_derived_session,
        aggregated.session_date,
        aggregated.started_at,
        aggregated.ended_at,
        cast(
            {{ dbt.datediff('aggregated.started_at', 'aggregated.ended_at', 'second') }} as bigint
        ) as duration_seconds,
        cast(aggregated.event_count as bigint) as event_count,
        aggregated.first_event_name,
        last_events.last_event_name,
        aggregated.is_converting
    from aggregated
    inner join last_events
        on aggregated.user_id = last_events.user_id
        and aggregated.session_id = last_events.session_id
)

select * from final
