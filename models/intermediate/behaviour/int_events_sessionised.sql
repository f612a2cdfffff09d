-- User actions (events whose mapping counts as active) with their session and their position
-- in the user's and the session's sequence: the shared base of sessions and paths.
--
-- A session is the event's session_id. Events without one are grouped per user by inactivity:
-- a gap of more than session_inactivity_minutes since the user's previous event without a
-- session_id starts a new session, keyed gap-<user_id>-<n>. Ties in time are ordered by
-- event_id, so positions are deterministic.
{%- set gap_seconds = var('session_inactivity_minutes') * 60 %}

{{ config(materialized='table') }}

with

events as (
    select * from {{ ref('stg_landing__events') }}
),

user_actions as (
    select
        event_id,
        user_id,
        session_id as given_session_id,
        event_at,
        event_date,
        event_name
    from events
    where is_active_event
),

unsessioned as (
    select
        event_id,
        user_id,
        event_at,
        lag(event_at) over (
            partition by user_id
            order by event_at, event_id
        ) as previous_event_at
    from user_actions
    where given_session_id is null
),

gap_starts as (
    select
        event_id,
        user_id,
        event_at,
        case
            when previous_event_at is null then 1
            when
                {{ dbt.datediff('previous_event_at', 'event_at', 'second') }}
                > {{ gap_seconds }}
                then 1
            else 0
        end as is_session_start
    from unsessioned
),

gap_sessions as (
    select
        event_id,
        sum(is_session_start) over (
            partition by user_id
            order by event_at, event_id
            rows between unbounded preceding and current row
        ) as gap_session_number
    from gap_starts
),

sessionised as (
    select
        user_actions.event_id,
        user_actions.user_id,
        coalesce(
            user_actions.given_session_id,
            {{ dbt.concat([
                "'gap-'",
                'user_actions.user_id',
                "'-'",
                'cast(gap_sessions.gap_session_number as ' ~ dbt.type_string() ~ ')',
            ]) }}
        ) as session_id,
        user_actions.given_session_id is null as is_derived_session,
        user_actions.event_at,
        user_actions.event_date,
        user_actions.event_name
    from user_actions
    left join gap_sessions
        on user_actions.event_id = gap_sessions.event_id
),

final as (
    select
        event_id,
        user_id,
        session_id,
        is_derived_session,
        event_at,
        event_date,
        event_name,
        cast(row_number() over (
            partition by user_id
            order by event_at, event_id
        ) as bigint) as user_event_number,
        cast(row_number() over (
            partition by user_id, session_id
            order by event_at, event_id
        ) as bigint) as session_event_number
    from sessionised
)

select * from final
