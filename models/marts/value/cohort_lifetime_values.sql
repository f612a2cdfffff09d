-- Lifetime value per acquisition cohort and channel (同期群LTV): realized LTV to date (value
-- cohorts), CAC and payback (channel paybacks) and the predicted value of the next 90 / 365 days
-- (the latest CLV scoring), one row per cohort grain, cohort start and channel ('all' = every
-- channel): "what is a user acquired in month M via channel C worth" in one row.
with

channel_paybacks as (
    select * from {{ ref('channel_paybacks') }}
),

users as (
    select * from {{ ref('users') }}
),

clv_scores as (
    select * from {{ ref('int_clv_scores_dated') }}
),

latest_scoring as (
    select max(as_of_date) as scored_date
    from clv_scores
),

latest_scores as (
    select clv_scores.*
    from clv_scores
    inner join latest_scoring
        on clv_scores.as_of_date = latest_scoring.scored_date
),

members as (
    {%- for grain in var('value_cohort_grains') %}
    select
        user_id,
        '{{ grain }}' as cohort_grain,
        {{ period_start(grain, 'signup_date') }} as cohort_start_date,
        coalesce(acquisition_channel, 'unknown') as acquisition_channel
    from users
    where signup_date is not null
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

member_predictions as (
    select
        members.cohort_grain,
        members.cohort_start_date,
        members.acquisition_channel,
        latest_scores.user_id as scored_user_id,
        latest_scores.predicted_value_90d,
        latest_scores.predicted_value_365d
    from members
    -- Users without a paid order are not CLV customers: they predict 0, not a missing value.
    left join latest_scores
        on members.user_id = latest_scores.user_id
),

channel_predictions as (
    select
        cohort_grain,
        cohort_start_date,
        acquisition_channel,
        count(scored_user_id) as scored_customers,
        sum(coalesce(predicted_value_90d, 0)) as predicted_value_90d,
        sum(coalesce(predicted_value_365d, 0)) as predicted_value_365d
    from member_predictions
    group by cohort_grain, cohort_start_date, acquisition_channel
),

predictions as (
    select * from channel_predictions

    union all

    select
        cohort_grain,
        cohort_start_date,
        'all' as acquisition_channel,
        sum(scored_customers) as scored_customers,
        sum(predicted_value_90d) as predicted_value_90d,
        sum(predicted_value_365d) as predicted_value_365d
    from channel_predictions
    group by cohort_grain, cohort_start_date
),

final as (
    select
        channel_paybacks.cohort_grain,
        channel_paybacks.cohort_start_date,
        channel_paybacks.acquisition_channel,
        channel_paybacks.cohort_users,
        channel_paybacks.latest_period_number,
        channel_paybacks.latest_cumulative_gmv_per_user as realized_ltv,
        channel_paybacks.cac,
        channel_paybacks.payback_period_number,
        channel_paybacks.is_payback_reached,
        latest_scoring.scored_date,
        cast(coalesce(predictions.scored_customers, 0) as bigint) as scored_customers,
        case
            when latest_scoring.scored_date is not null
                then cast(predictions.predicted_value_90d as double) / channel_paybacks.cohort_users
        end as predicted_value_90d_per_user,
        case
            when latest_scoring.scored_date is not null
                then cast(predictions.predicted_value_365d as double) / channel_paybacks.cohort_users
        end as predicted_value_365d_per_user,
        case
            when latest_scoring.scored_date is not null
                then channel_paybacks.latest_cumulative_gmv_per_user
                + cast(predictions.predicted_value_365d as double) / channel_paybacks.cohort_users
        end as projected_ltv_365d,
        channel_paybacks.is_provisional
    from channel_paybacks
    cross join latest_scoring
    left join predictions
        on channel_paybacks.cohort_grain = predictions.cohort_grain
        and channel_paybacks.cohort_start_date = predictions.cohort_start_date
        and channel_paybacks.acquisition_channel = predictions.acquisition_channel
    -- Cohorts with users only (spend without users has no per-user value).
    where channel_paybacks.cohort_users > 0
)

select * from final
