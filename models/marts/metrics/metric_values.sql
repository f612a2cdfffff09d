-- Long metric values for breakdowns: one row per day, catalogue metric and segment.
{%- set metric_columns = {
    'new_users': 'new_users',
    'activation_rate': 'activation_rate',
    'dau': 'dau',
    'wau': 'wau',
    'mau': 'mau',
    'stickiness': 'stickiness',
    'd1_retention': 'd1_retention_rate',
    'd7_retention': 'd7_retention_rate',
    'd30_retention': 'd30_retention_rate',
    'reactivated_users': 'reactivated_users',
    'paying_users': 'paying_users',
    'paying_rate': 'paying_rate',
    'orders': 'orders',
    'gmv': 'gmv',
    'aov': 'aov',
    'arpu': 'arpu',
    'arppu': 'arppu',
    'referral_invites': 'referral_invites',
    'referral_conversions': 'referral_conversions',
    'k_factor': 'k_factor',
    'marketing_spend': 'marketing_spend',
    'cac': 'cac',
    'roi': 'roi',
    'search_rate': 'search_rate',
    'add_to_cart_rate': 'add_to_cart_rate',
    'coupon_order_share': 'coupon_order_share',
    'sessions_per_active_user': 'sessions_per_active_user',
} %}
with

metric_segment_days as (
    select * from {{ ref('int_metric_segment_days_aggregated') }}
),

unpivoted as (
    {%- for metric_code, column in metric_columns.items() %}
    select
        metric_date,
        '{{ metric_code }}' as metric_code,
        segment_dimension as dimension,
        segment_value as dimension_value,
        cast({{ column }} as double) as metric_value
    from metric_segment_days
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

satisfaction_metric_values as (
    select * from {{ ref('satisfaction_metric_values') }}
),

final as (
    select
        metric_date,
        metric_code,
        dimension,
        dimension_value,
        metric_value
    from unpivoted

    union all

    -- The satisfaction view's metrics, computed over feedback and tickets in their own mart.
    select
        metric_date,
        metric_code,
        dimension,
        dimension_value,
        metric_value
    from satisfaction_metric_values
)

select * from final
