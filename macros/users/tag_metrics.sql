{#- The metrics tag rules (seeds/tag_catalogue.csv) may name: metric -> (SQL over the columns of
    int_user_tags_evaluated's metrics CTE, kind). Numeric metrics serve threshold and range rules,
    text metrics attribute and match rules. Adding a metric here: also add it to the accepted
    metric lists in seeds/tag_catalogue.yml. -#}
{% macro tag_metrics() %}
    {{- return({
        'age': ('age', 'numeric'),
        'active_days_7d': ('active_days_7d', 'numeric'),
        'active_days_30d': ('active_days_30d', 'numeric'),
        'sessions_30d': ('sessions_30d', 'numeric'),
        'searches_30d': ('searches_30d', 'numeric'),
        'night_active_event_share_30d':
            ('night_active_events_30d / nullif(active_events_30d, 0)', 'numeric'),
        'weekend_active_day_share_30d':
            ('weekend_active_days_30d / nullif(active_days_30d, 0)', 'numeric'),
        'push_click_rate_30d': ('push_clicks_30d / nullif(push_receives_30d, 0)', 'numeric'),
        'paid_orders_rfm_window': ('rfm_paid_orders', 'numeric'),
        'paid_amount_rfm_window': ('rfm_paid_amount', 'numeric'),
        'aov_rfm_window': ('rfm_paid_amount / nullif(rfm_paid_orders, 0)', 'numeric'),
        'coupon_order_share_rfm_window': ('rfm_coupon_orders / nullif(rfm_paid_orders, 0)', 'numeric'),
        'days_since_last_active': ('days_since_last_active', 'numeric'),
        'days_since_last_paid_order': ('days_since_last_paid_order', 'numeric'),
        'value_score': ('value_score', 'numeric'),
        'churn_score': ('churn_score', 'numeric'),
        'recent_complaint_tickets': ('recent_complaint_tickets', 'numeric'),
        'gender': ('gender', 'text'),
        'city_tier_label': ("'tier_' || cast(city_tier as " ~ dbt.type_string() ~ ")", 'text'),
        'top_category': ('top_category', 'text'),
        'preferred_platform': ('preferred_platform', 'text'),
        'lifecycle_stage': ('lifecycle_stage', 'text'),
        'period_state': ('period_state', 'text'),
        'activity_tier': ('activity_tier', 'text'),
        'rfm_segment_code': ('rfm_segment_code', 'text'),
        'value_tier': ('value_tier', 'text'),
        'nps_category': ('nps_category', 'text'),
        'predicted_value_tier': ('predicted_value_tier', 'text'),
    }) -}}
{% endmacro %}
