-- The users of a stickiness period add up to the distinct active users of that calendar period
-- in int_user_days_aggregated, and their active days to the period's active user-days.
-- Rows returned = failures.
-- A check of stickiness_distributions in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'stickiness_distributions'}}}) }}
{%- set grains = var('stickiness_grains') %}
with

stickiness as (
    select * from {{ ref('stickiness_distributions') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

expected as (
    {%- for grain in grains %}
    select
        '{{ grain }}' as period_type,
        {{ period_start(grain, 'activity_date') }} as period_start_date,
        count(distinct user_id) as active_users,
        count(*) as active_user_days
    from user_days
    where is_active
    group by {{ period_start(grain, 'activity_date') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

observed as (
    select
        period_type,
        period_start_date,
        sum(users) as active_users,
        sum(users * active_days) as active_user_days,
        max(period_active_users) as period_active_users
    from stickiness
    group by period_type, period_start_date
),

failures as (
    select
        coalesce(expected.period_type, observed.period_type) as period_type,
        coalesce(expected.period_start_date, observed.period_start_date) as period_start_date
    from expected
    full outer join observed
        on expected.period_type = observed.period_type
        and expected.period_start_date = observed.period_start_date
    where
        expected.active_users is null
        or observed.active_users is null
        or expected.active_users != observed.active_users
        or expected.active_user_days != observed.active_user_days
        or observed.period_active_users != observed.active_users
)

select * from failures
