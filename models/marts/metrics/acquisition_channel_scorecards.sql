-- Acquisition-channel scorecard: one row per signup month and acquisition channel, rolled up
-- from the daily channel rows so every figure uses the catalogue's daily definitions.
with

metric_segment_days as (
    select * from {{ ref('int_metric_segment_days_aggregated') }}
),

n_day_retention as (
    select * from {{ ref('n_day_retention_rates') }}
),

channel_days as (
    select
        metric_segment_days.*,
        n_day_retention.d7_retained_users
    from metric_segment_days
    left join n_day_retention
        on metric_segment_days.metric_date = n_day_retention.signup_date
        and metric_segment_days.segment_dimension = n_day_retention.segment_dimension
        and metric_segment_days.segment_value = n_day_retention.segment_value
    where metric_segment_days.segment_dimension = 'acquisition_channel'
),

monthly as (
    select
        {{ period_start('month', 'metric_date') }} as signup_month,
        segment_value as acquisition_channel,
        sum(new_users) as new_users,
        sum(case when is_activation_window_closed then activated_users else 0 end) as activated_users,
        sum(case when is_activation_window_closed then new_users else 0 end) as activation_observed_users,
        sum(case when d7_retained_users is not null then d7_retained_users else 0 end) as d7_retained_users,
        sum(case when d7_retained_users is not null then new_users else 0 end) as d7_observed_users,
        sum(new_paying_users) as new_paying_users,
        sum(marketing_spend) as marketing_spend,
        sum(case when is_roi_window_closed then new_user_window_gmv - marketing_spend end) as roi_net_return,
        sum(case when is_roi_window_closed then marketing_spend end) as roi_spend,
        min(case when is_roi_window_closed then 1 else 0 end) = 0 as is_provisional
    from channel_days
    group by {{ period_start('month', 'metric_date') }}, segment_value
),

final as (
    select
        signup_month,
        acquisition_channel,
        cast(new_users as bigint) as new_users,
        {{ safe_ratio('activated_users', 'activation_observed_users') }} as activation_rate,
        {{ safe_ratio('d7_retained_users', 'd7_observed_users') }} as d7_retention_rate,
        cast(new_paying_users as bigint) as new_paying_users,
        {{ safe_ratio('new_paying_users', 'new_users') }} as paying_conversion_rate,
        cast(marketing_spend as double) as marketing_spend,
        {{ safe_ratio('marketing_spend', 'new_users') }} as cac,
        {{ safe_ratio('roi_net_return', 'roi_spend') }} as roi,
        is_provisional
    from monthly
)

select * from final
