-- One row per user and as-of date (int_as_of_dates_selected) for every user signed up on or
-- before that date: the activity, order and preference facts layers and tags are computed from,
-- each over a window ending on the as-of date (inclusive). Reads the shared daily activity
-- model, so "active" keeps its single definition.
--
-- Windowed facts join each day only to the as-of dates whose longest window holds it; lifetime
-- facts (first and last active day, orders ever) are summed per period between as-of dates and
-- accumulated, so no user-day is joined to every later as-of date.
--
-- Incremental by as-of date (macros/incremental/day_windows.sql): a day-partitioned run
-- recomputes the as-of dates from its window's first day on and deletes those no longer
-- selected; a plain `dbt build` recomputes every as-of date. Older as-of dates keep their rows,
-- so after changing a definition var, or a user's attributes in the landing data, run a plain
-- build to restate history.
{%- set rfm_window = var('rfm_window_days') %}
{%- set churned_days = var('lifecycle_churned_days') %}
{#- The longest window any fact below reads, in days ending on the as-of date. -#}
{%- set max_window = [
    7, 30, rfm_window, var('activity_window_days'), 2 * var('period_state_days'),
    var('lifecycle_active_days'),
] | max %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[as_of_window_delete_hook('int_as_of_dates_selected')],
    )
}}

with

users as (
    select * from {{ ref('int_users_unified') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
    {{ as_of_window_where('as_of_date') }}
),

user_days as {{ inline_cte() }} (
    select * from {{ ref('int_user_days_aggregated') }}
),

event_days as (
    select * from {{ ref('int_user_event_days_aggregated') }}
),

preference_days as (
    select * from {{ ref('int_user_preference_days_aggregated') }}
),

active_days_with_previous as (
    select
        user_id,
        activity_date,
        lag(activity_date) over (partition by user_id order by activity_date) as previous_active_date
    from user_days
    where is_active
),

-- A return after churn: the first active day after more than lifecycle_churned_days days
-- without one, i.e. the user was churned the day before.
return_days as (
    select
        user_id,
        activity_date
    from active_days_with_previous
    where previous_active_date is not null
        and {{ dbt.datediff('previous_active_date', 'activity_date', 'day') }} > {{ churned_days }}
),

days_enriched as (
    select
        user_days.user_id,
        user_days.activity_date,
        user_days.is_active,
        user_days.session_count,
        user_days.paid_order_count,
        user_days.paid_amount,
        user_days.coupon_order_count,
        {{ is_weekend('user_days.activity_date') }} as is_weekend,
        return_days.activity_date is not null as is_return_after_churn,
        coalesce(event_days.night_active_event_count, 0) as night_active_event_count,
        coalesce(event_days.search_count, 0) as search_count,
        coalesce(event_days.push_receive_count, 0) as push_receive_count,
        coalesce(event_days.push_click_count, 0) as push_click_count,
        user_days.active_event_count
    from user_days
    left join event_days
        on user_days.user_id = event_days.user_id
        and user_days.activity_date = event_days.activity_date
    left join return_days
        on user_days.user_id = return_days.user_id
        and user_days.activity_date = return_days.activity_date
),

run_as_of_dates as (
    select
        as_of_date,
        lag(as_of_date) over (order by as_of_date) as previous_as_of_date
    from as_of_dates
),

users_as_of as (
    select
        users.user_id,
        run_as_of_dates.as_of_date,
        users.signup_date,
        users.gender,
        users.birth_year,
        users.city_tier
    from users
    inner join run_as_of_dates
        on users.signup_date <= run_as_of_dates.as_of_date
),

data_dates as (
    select distinct activity_date from user_days
),

-- Each data day paired with the as-of dates whose longest window (max_window days, ending on
-- the as-of date) holds it: an equality join to this small map replaces a range join of every
-- user-day to every later as-of date.
window_dates as (
    select
        data_dates.activity_date,
        run_as_of_dates.as_of_date,
        {{ dbt.datediff('data_dates.activity_date', 'run_as_of_dates.as_of_date', 'day') }} as days_before
    from data_dates
    inner join run_as_of_dates
        on data_dates.activity_date <= run_as_of_dates.as_of_date
        and data_dates.activity_date > {{ dbt.dateadd('day', -max_window, 'run_as_of_dates.as_of_date') }}
),

-- Each data day in the period it closes: after the previous as-of date of the run, up to and
-- including this one (all earlier history for the run's first as-of date).
period_dates as (
    select
        data_dates.activity_date,
        run_as_of_dates.as_of_date
    from data_dates
    inner join run_as_of_dates
        on data_dates.activity_date <= run_as_of_dates.as_of_date
        and (
            run_as_of_dates.previous_as_of_date is null
            or data_dates.activity_date > run_as_of_dates.previous_as_of_date
        )
),

-- Lifetime facts per user and period, accumulated over the periods below.
period_facts as (
    select
        user_days.user_id,
        period_dates.as_of_date,
        min(user_days.activity_date) filter (where user_days.is_active) as first_active_date,
        max(user_days.activity_date) filter (where user_days.is_active) as last_active_date,
        max(user_days.activity_date) filter (where user_days.paid_order_count > 0)
            as last_paid_order_date,
        sum(user_days.paid_order_count) as paid_orders
    from user_days
    inner join period_dates
        on user_days.activity_date = period_dates.activity_date
    group by user_days.user_id, period_dates.as_of_date
),

-- Every user on every as-of date of the run (signed up or not, so periods before the signup
-- date still count), accumulated: lifetime facts up to each as-of date.
lifetime_facts as (
    select
        users.user_id,
        run_as_of_dates.as_of_date,
        min(period_facts.first_active_date) over user_history as first_active_date,
        max(period_facts.last_active_date) over user_history as last_active_date,
        max(period_facts.last_paid_order_date) over user_history as last_paid_order_date,
        coalesce(sum(period_facts.paid_orders) over user_history, 0) as lifetime_paid_orders
    from users
    cross join run_as_of_dates
    left join period_facts
        on users.user_id = period_facts.user_id
        and run_as_of_dates.as_of_date = period_facts.as_of_date
    window user_history as (
        partition by users.user_id
        order by run_as_of_dates.as_of_date
        rows between unbounded preceding and current row
    )
),

days_as_of as (
    select
        window_dates.as_of_date,
        window_dates.days_before,
        days_enriched.*
    from days_enriched
    inner join window_dates
        on days_enriched.activity_date = window_dates.activity_date
),

day_facts as (
    select
        user_id,
        as_of_date,
        count(*) filter (where is_active and days_before < 7) as active_days_7d,
        count(*) filter (where is_active and days_before < 30) as active_days_30d,
        count(*) filter (
            where is_active and days_before < {{ var('activity_window_days') }}
        ) as activity_window_active_days,
        count(*) filter (
            where is_active and days_before < {{ var('period_state_days') }}
        ) as period_active_days,
        count(*) filter (
            where is_active
            and days_before >= {{ var('period_state_days') }}
            and days_before < 2 * {{ var('period_state_days') }}
        ) as previous_period_active_days,
        count(*) filter (
            where is_return_after_churn and days_before < {{ var('lifecycle_active_days') }}
        ) as recent_returns,
        coalesce(sum(session_count) filter (where days_before < 30), 0) as sessions_30d,
        coalesce(sum(active_event_count) filter (where days_before < 30), 0) as active_events_30d,
        coalesce(sum(night_active_event_count) filter (where days_before < 30), 0)
            as night_active_events_30d,
        count(*) filter (where is_active and is_weekend and days_before < 30)
            as weekend_active_days_30d,
        coalesce(sum(search_count) filter (where days_before < 30), 0) as searches_30d,
        coalesce(sum(push_receive_count) filter (where days_before < 30), 0) as push_receives_30d,
        coalesce(sum(push_click_count) filter (where days_before < 30), 0) as push_clicks_30d,
        coalesce(sum(paid_order_count) filter (where days_before < {{ rfm_window }}), 0)
            as rfm_paid_orders,
        coalesce(sum(paid_amount) filter (where days_before < {{ rfm_window }}), 0)
            as rfm_paid_amount,
        coalesce(sum(coupon_order_count) filter (where days_before < {{ rfm_window }}), 0)
            as rfm_coupon_orders
    from days_as_of
    group by user_id, as_of_date
),

preferences_in_window as (
    select
        preference_days.user_id,
        window_dates.as_of_date,
        preference_days.preference_type,
        preference_days.preference_value,
        sum(preference_days.paid_amount) as paid_amount,
        sum(preference_days.event_count) as event_count
    from preference_days
    inner join window_dates
        on preference_days.activity_date = window_dates.activity_date
    where window_dates.days_before < {{ rfm_window }}
    group by
        preference_days.user_id,
        window_dates.as_of_date,
        preference_days.preference_type,
        preference_days.preference_value
),

preferences_ranked as (
    select
        user_id,
        as_of_date,
        preference_type,
        preference_value,
        row_number() over (
            partition by user_id, as_of_date, preference_type
            order by paid_amount desc, event_count desc, preference_value
        ) as preference_rank
    from preferences_in_window
),

top_preferences as (
    select
        user_id,
        as_of_date,
        max(case when preference_type = 'category' then preference_value end) as top_category,
        max(case when preference_type = 'platform' then preference_value end)
            as preferred_platform
    from preferences_ranked
    where preference_rank = 1
    group by user_id, as_of_date
),

final as (
    select
        users_as_of.user_id,
        users_as_of.as_of_date,
        users_as_of.signup_date,
        {{ dbt.datediff('users_as_of.signup_date', 'users_as_of.as_of_date', 'day') }}
            as days_since_signup,
        users_as_of.gender,
        users_as_of.city_tier,
        cast(extract(year from users_as_of.as_of_date) - users_as_of.birth_year as integer) as age,
        lifetime_facts.first_active_date,
        lifetime_facts.last_active_date,
        {{ dbt.datediff('lifetime_facts.last_active_date', 'users_as_of.as_of_date', 'day') }}
            as days_since_last_active,
        lifetime_facts.last_paid_order_date,
        {{ dbt.datediff('lifetime_facts.last_paid_order_date', 'users_as_of.as_of_date', 'day') }}
            as days_since_last_paid_order,
        cast(lifetime_facts.lifetime_paid_orders as bigint) as lifetime_paid_orders,
        coalesce(day_facts.active_days_7d, 0) as active_days_7d,
        coalesce(day_facts.active_days_30d, 0) as active_days_30d,
        coalesce(day_facts.activity_window_active_days, 0) as activity_window_active_days,
        coalesce(day_facts.period_active_days, 0) as period_active_days,
        coalesce(day_facts.previous_period_active_days, 0) as previous_period_active_days,
        coalesce(day_facts.recent_returns, 0) > 0 as has_recent_return,
        cast(coalesce(day_facts.sessions_30d, 0) as bigint) as sessions_30d,
        cast(coalesce(day_facts.active_events_30d, 0) as bigint) as active_events_30d,
        cast(coalesce(day_facts.night_active_events_30d, 0) as bigint) as night_active_events_30d,
        coalesce(day_facts.weekend_active_days_30d, 0) as weekend_active_days_30d,
        cast(coalesce(day_facts.searches_30d, 0) as bigint) as searches_30d,
        cast(coalesce(day_facts.push_receives_30d, 0) as bigint) as push_receives_30d,
        cast(coalesce(day_facts.push_clicks_30d, 0) as bigint) as push_clicks_30d,
        cast(coalesce(day_facts.rfm_paid_orders, 0) as bigint) as rfm_paid_orders,
        cast(coalesce(day_facts.rfm_paid_amount, 0) as decimal(38, 2)) as rfm_paid_amount,
        cast(coalesce(day_facts.rfm_coupon_orders, 0) as bigint) as rfm_coupon_orders,
        top_preferences.top_category,
        top_preferences.preferred_platform
    from users_as_of
    inner join lifetime_facts
        on users_as_of.user_id = lifetime_facts.user_id
        and users_as_of.as_of_date = lifetime_facts.as_of_date
    left join day_facts
        on users_as_of.user_id = day_facts.user_id
        and users_as_of.as_of_date = day_facts.as_of_date
    left join top_preferences
        on users_as_of.user_id = top_preferences.user_id
        and users_as_of.as_of_date = top_preferences.as_of_date
)

select * from final
