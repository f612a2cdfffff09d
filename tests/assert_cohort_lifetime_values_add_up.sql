-- The channels of cohort_lifetime_values add up to `all` (cohort users, scored customers,
-- predicted 365-day value), and per grain the scored customers are the latest scoring's
-- customers with a signup day. Rows returned = failures.
-- A check of cohort_lifetime_values in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'cohort_lifetime_values'}}}) }}
with

lifetime_values as (
    select * from {{ ref('cohort_lifetime_values') }}
),

clv_scores as (
    select * from {{ ref('int_clv_scores_dated') }}
),

users as (
    select * from {{ ref('users') }}
),

valued as (
    select
        cohort_grain,
        cohort_start_date,
        acquisition_channel = 'all' as is_all,
        cohort_users,
        scored_customers,
        coalesce(predicted_value_365d_per_user, 0) * cohort_users as predicted_value
    from lifetime_values
),

by_cohort as (
    select
        cohort_grain,
        cohort_start_date,
        sum(case when is_all then cohort_users else 0 end) as all_users,
        sum(case when not is_all then cohort_users else 0 end) as channel_users,
        sum(case when is_all then scored_customers else 0 end) as all_scored,
        sum(case when not is_all then scored_customers else 0 end) as channel_scored,
        sum(case when is_all then predicted_value else 0 end) as all_predicted,
        sum(case when not is_all then predicted_value else 0 end) as channel_predicted
    from valued
    group by cohort_grain, cohort_start_date
),

latest_scoring as (
    select max(as_of_date) as scored_date
    from clv_scores
),

scored_total as (
    select count(*) as scored_customers
    from clv_scores
    inner join latest_scoring
        on clv_scores.as_of_date = latest_scoring.scored_date
    inner join users
        on clv_scores.user_id = users.user_id
    where users.signup_date is not null
),

grain_scored as (
    select
        cohort_grain,
        sum(scored_customers) as scored_customers
    from lifetime_values
    where acquisition_channel = 'all'
    group by cohort_grain
),

failures as (
    select
        'channels_vs_all' as failure,
        cohort_grain
    from by_cohort
    where
        all_users != channel_users
        or all_scored != channel_scored
        or abs(all_predicted - channel_predicted) > 0.01

    union all

    select
        'scored_customers' as failure,
        grain_scored.cohort_grain
    from grain_scored
    cross join scored_total
    where grain_scored.scored_customers != scored_total.scored_customers
)

select * from failures
