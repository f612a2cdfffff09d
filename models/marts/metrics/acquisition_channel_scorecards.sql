-- Acquisition-channel scorecard: one row per signup month and acquisition channel, rolled up
-- from the daily channel rows so every figure uses the catalogue's daily definitions. Paying
-- conversion (paid at any time since signup) is counted from the users themselves: it keeps
-- changing for every signup day, which the incremental daily rows do not restate.
with

metric_segment_days as (
    select * from {{ ref('int_metric_segment_days_aggregated') }}
),

n_day_retention as (
    select * from {{ ref('n_day_retention_rates') }}
),

users as (
    select * from {{ ref('users') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

first_paid_days as (
    select user_id, min(activity_date) as first_paid_date
    from user_days
    where has_paid_order
    group by user_id
),

paying_new_users as (
    select
        {{ period_start('month', 'users.signup_date') }} as signup_month,
        users.acquisition_channel,
        count(*) as new_paying_users
    from users
    inner join first_paid_days
        on users.user_id = first_paid_days.user_id
    where first_paid_days.first_paid_date >= users.signup_date
    group by {{ period_start('month', 'users.signup_date') }}, users.acquisition_channel
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
        -- Money summed as cents (decimal): a sum of doubles depends on the order rows are read
        -- in, and the incremental daily rows are stored in another order than a full build's.
        sum(cast(marketing_spend as decimal(38, 2))) as marketing_spend,
        sum(
            case
                when is_roi_window_closed
                    then cast(new_user_window_gmv as decimal(38, 2))
                    - cast(marketing_spend as decimal(38, 2))
            end
        ) as roi_net_return,
        sum(case when is_roi_window_closed then cast(marketing_spend as decimal(38, 2)) end)
            as roi_spend,
        min(case when is_roi_window_closed then 1 else 0 end) = 0 as is_provisional
    from channel_days
    group by {{ period_start('month', 'metric_date') }}, segment_value
),

monthly_with_paying as (
    select
        monthly.*,
        coalesce(paying_new_users.new_paying_users, 0) as new_paying_users
    from monthly
    left join paying_new_users
        on monthly.signup_month = paying_new_users.signup_month
        and monthly.acquisition_channel = paying_new_users.acquisition_channel
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
    from monthly_with_paying
)

select * from final
