-- One row per (user, cutoff): what was known about the user at the end of the cutoff day.
-- Only user-days on or before the cutoff are read (the label lives in churn_labels).
with

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

users as (
    select * from {{ ref('users') }}
),

cutoffs as (
    select * from {{ ref('churn_cutoffs') }}
),

history as (
    -- Every user-day on or before each cutoff: the only activity features may read.
    select
        cutoffs.cutoff_date,
        user_days.user_id,
        user_days.activity_date,
        {{ dbt.datediff('user_days.activity_date', 'cutoffs.cutoff_date', 'day') }}
            as days_before_cutoff,
        user_days.is_active,
        user_days.has_paid_order,
        user_days.event_count,
        user_days.session_count,
        user_days.order_count,
        user_days.paid_order_count,
        user_days.paid_amount,
        user_days.coupon_order_count
    from cutoffs
    inner join user_days
        on user_days.activity_date <= cutoffs.cutoff_date
),

per_user as (
    select
        cutoff_date,
        user_id,
        min(activity_date) filter (where is_active) as first_active_date,
        max(activity_date) filter (where is_active) as last_active_date,
        min(activity_date) filter (where has_paid_order) as first_paid_order_date,
        max(activity_date) filter (where has_paid_order) as last_paid_order_date,
        count(*) filter (where is_active and days_before_cutoff < 7) as active_days_7d,
        count(*) filter (where is_active and days_before_cutoff < 28) as active_days_28d,
        count(*) filter (
            where is_active and days_before_cutoff >= 28 and days_before_cutoff < 56
        ) as active_days_prev_28d,
        count(*) filter (where is_active) as active_days_lifetime,
        cast(coalesce(sum(session_count) filter (where days_before_cutoff < 28), 0) as bigint)
            as sessions_28d,
        cast(coalesce(sum(event_count) filter (where days_before_cutoff < 28), 0) as bigint)
            as events_28d,
        cast(coalesce(sum(paid_order_count) filter (where days_before_cutoff < 28), 0) as bigint)
            as paid_orders_28d,
        cast(coalesce(sum(paid_order_count), 0) as bigint) as paid_orders_lifetime,
        cast(coalesce(sum(order_count - paid_order_count), 0) as bigint) as unpaid_orders_lifetime,
        coalesce(sum(paid_amount) filter (where days_before_cutoff < 28), 0) as paid_amount_28d,
        coalesce(sum(paid_amount), 0) as paid_amount_lifetime,
        cast(coalesce(sum(coupon_order_count), 0) as bigint) as coupon_orders_lifetime,
        count(*) filter (where has_paid_order) as paid_order_days_lifetime
    from history
    group by cutoff_date, user_id
),

population as (
    -- Users active at least once in the last churn_active_window_days days before the cutoff.
    select *
    from per_user
    where
        last_active_date is not null
        and {{ dbt.datediff('last_active_date', 'cutoff_date', 'day') }}
            < {{ var('churn_active_window_days') }}
),

final as (
    select
        population.user_id,
        population.cutoff_date,
        {{ dbt.datediff('population.last_active_date', 'population.cutoff_date', 'day') }}
            as days_since_last_active,
        {{ dbt.datediff('population.first_active_date', 'population.cutoff_date', 'day') }}
            as days_since_first_active,
        case
            when users.signup_date <= population.cutoff_date
                then {{ dbt.datediff('users.signup_date', 'population.cutoff_date', 'day') }}
        end as days_since_signup,
        population.active_days_7d,
        population.active_days_28d,
        population.active_days_prev_28d,
        population.active_days_lifetime,
        -- Share of the days the user could have been active in the last 28 (tenure-aware).
        cast(population.active_days_28d as double) / least(
            28,
            {{ dbt.datediff('population.first_active_date', 'population.cutoff_date', 'day') }} + 1
        ) as active_day_share_28d,
        -- Typical gap between active days: recency far above it suggests the user has left.
        case
            when population.active_days_lifetime > 1
                then cast(
                    {{ dbt.datediff('population.first_active_date', 'population.last_active_date', 'day') }}
                    as double
                ) / (population.active_days_lifetime - 1)
        end as mean_days_between_active_days,
        population.sessions_28d,
        population.events_28d,
        population.paid_orders_28d,
        population.paid_orders_lifetime,
        population.unpaid_orders_lifetime,
        cast(population.paid_amount_28d as double) as paid_amount_28d,
        cast(population.paid_amount_lifetime as double) as paid_amount_lifetime,
        population.coupon_orders_lifetime,
        {{ dbt.datediff('population.last_paid_order_date', 'population.cutoff_date', 'day') }}
            as days_since_last_paid_order,
        -- BG/NBD summary of the paid-order log (days with a paid order are the transactions;
        -- the first one is the customer's birth): null for users who never paid.
        case
            when population.paid_order_days_lifetime > 0
                then population.paid_order_days_lifetime - 1
        end as bgnbd_frequency,
        {{ dbt.datediff('population.first_paid_order_date', 'population.last_paid_order_date', 'day') }}
            as bgnbd_recency_days,
        {{ dbt.datediff('population.first_paid_order_date', 'population.cutoff_date', 'day') }}
            as bgnbd_age_days,
        coalesce(users.gender, 'unknown') as gender,
        users.city_tier,
        coalesce(users.acquisition_channel, 'unknown') as acquisition_channel,
        coalesce(users.platform, 'unknown') as platform
    from population
    left join users
        on population.user_id = users.user_id
)

select * from final
