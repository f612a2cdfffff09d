-- Sessions hold every user action once: per user, and apart for sent and derived sessions,
-- the sessions' event_count adds up to the user's actions, their first start and last end are
-- the user's first and last action, and for sent session ids the sessions and converting
-- sessions are the distinct session ids and those holding a session_converting_events event.
-- Counted here straight from the staged events (is_active_event), not from
-- int_events_sessionised, so an action lost or counted twice by the sessionising fails.
-- A check of sessions in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'sessions'}}}) }}
{%- set converting_events = var('session_converting_events') %}

with

events as (
    select * from {{ ref('stg_landing__events') }}
),

sessions as (
    select * from {{ ref('sessions') }}
),

user_actions as (
    select
        user_id,
        session_id,
        session_id is null as is_derived_session,
        event_at,
        event_name
    from events
    where is_active_event
),

expected as (
    select
        user_id,
        is_derived_session,
        count(*) as event_count,
        min(event_at) as first_at,
        max(event_at) as last_at,
        count(distinct session_id) as sent_sessions,
        count(
            distinct case
                when event_name in ('{{ converting_events | join("', '") }}') then session_id
            end
        ) as sent_converting_sessions
    from user_actions
    group by user_id, is_derived_session
),

actual as (
    select
        user_id,
        is_derived_session,
        sum(event_count) as event_count,
        min(started_at) as first_at,
        max(ended_at) as last_at,
        count(*) as sessions,
        count(case when is_converting then 1 end) as converting_sessions
    from sessions
    group by user_id, is_derived_session
),

final as (
    select
        coalesce(expected.user_id, actual.user_id) as user_id,
        coalesce(expected.is_derived_session, actual.is_derived_session) as is_derived_session,
        expected.event_count as expected_event_count,
        actual.event_count as session_event_count,
        expected.first_at as expected_first_at,
        actual.first_at as session_first_at,
        expected.last_at as expected_last_at,
        actual.last_at as session_last_at,
        expected.sent_sessions as expected_sent_sessions,
        actual.sessions,
        expected.sent_converting_sessions as expected_sent_converting_sessions,
        actual.converting_sessions
    from expected
    full outer join actual
        on
            expected.user_id = actual.user_id
            and expected.is_derived_session = actual.is_derived_session
    where
        expected.user_id is null
        or actual.user_id is null
        or expected.event_count <> actual.event_count
        or expected.first_at <> actual.first_at
        or expected.last_at <> actual.last_at
        or (
            not expected.is_derived_session
            and (
                expected.sent_sessions <> actual.sessions
                or expected.sent_converting_sessions <> actual.converting_sessions
            )
        )
)

select * from final
