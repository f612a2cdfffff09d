-- One row per (user, cutoff) of churn_features: did the user churn in the label window?
with

features as (
    select * from {{ ref('churn_features') }}
),

cutoffs as (
    select * from {{ ref('churn_cutoffs') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

future_days as (
    -- Days in (cutoff, cutoff + label window] with an active day or any order.
    select
        features.user_id,
        features.cutoff_date,
        cutoffs.label_window_end_date,
        cutoffs.label_window_days,
        cutoffs.is_label_complete,
        count(user_days.activity_date) as future_active_or_order_days
    from features
    inner join cutoffs
        on features.cutoff_date = cutoffs.cutoff_date
    left join user_days
        on features.user_id = user_days.user_id
        and user_days.activity_date > features.cutoff_date
        and user_days.activity_date <= cutoffs.label_window_end_date
        and (user_days.is_active or user_days.order_count > 0)
    group by
        features.user_id,
        features.cutoff_date,
        cutoffs.label_window_end_date,
        cutoffs.label_window_days,
        cutoffs.is_label_complete
),

final as (
    select
        user_id,
        cutoff_date,
        label_window_end_date,
        label_window_days,
        is_label_complete,
        future_active_or_order_days,
        case
            when is_label_complete then future_active_or_order_days = 0
        end as is_churned
    from future_days
)

select * from final
