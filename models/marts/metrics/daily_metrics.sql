-- One row per business day, wide: the overall row of every daily catalogue metric.
with

metric_segment_days as (
    select * from {{ ref('int_metric_segment_days_aggregated') }}
),

final as (
    select
        metric_date,
        new_users,
        activation_rate,
        dau,
        wau,
        mau,
        stickiness,
        d1_retention_rate,
        d7_retention_rate,
        d30_retention_rate,
        reactivated_users,
        paying_users,
        paying_rate,
        orders,
        gmv,
        aov,
        arpu,
        arppu,
        referral_invites,
        referral_conversions,
        k_factor,
        marketing_spend,
        cac,
        roi,
        search_rate,
        add_to_cart_rate,
        coupon_order_share,
        sessions_per_active_user
    from metric_segment_days
    where segment_dimension = 'overall'
)

select * from final
