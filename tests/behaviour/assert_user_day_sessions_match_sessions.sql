-- One definition of a session: int_user_days_aggregated.session_count (which the metric
-- system's sessions, churn features and user profiles sum) is, per user and business day, the
-- number of rows of sessions that start that day (session_date). A day-partitioned run checks
-- the days it recomputed (in_day_window).
-- A check of sessions in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'sessions'}}}) }}

with

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

sessions as (
    select * from {{ ref('sessions') }}
),

counted_days as (
    select
        user_id,
        activity_date,
        session_count
    from user_days
    where session_count > 0 and {{ in_day_window('activity_date') }}
),

session_days as (
    select
        user_id,
        session_date as activity_date,
        count(*) as session_count
    from sessions
    where {{ in_day_window('session_date') }}
    group by user_id, session_date
),

final as (
    select
        coalesce(counted_days.user_id, session_days.user_id) as user_id,
        coalesce(counted_days.activity_date, session_days.activity_date) as activity_date,
        counted_days.session_count as user_day_session_count,
        session_days.session_count as sessions_started
    from counted_days
    full outer join session_days
        on
            counted_days.user_id = session_days.user_id
            and counted_days.activity_date = session_days.activity_date
    where
        counted_days.session_count is null
        or session_days.session_count is null
        or counted_days.session_count <> session_days.session_count
)

select * from final
