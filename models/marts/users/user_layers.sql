-- One row per user and as-of date: the user's layer in every layer dimension (用户分层), for BI
-- and for metrics broken down "by layer". Definitions: user_layers.yml.
-- Incremental by as-of date like int_user_layers_assigned (macros/incremental/day_windows.sql):
-- a day-partitioned run copies only its as-of dates instead of every user's whole history.
{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[as_of_window_delete_hook('int_user_layers_assigned')],
    )
}}

with

layers as (
    select * from {{ ref('int_user_layers_assigned') }}
    {{ as_of_window_where('as_of_date') }}
),

final as (
    select
        user_id,
        as_of_date,
        days_since_signup,
        last_active_date,
        days_since_last_active,
        activity_window_active_days,
        recency_days,
        frequency,
        monetary,
        r_score,
        f_score,
        m_score,
        recency_threshold,
        frequency_threshold,
        monetary_threshold,
        is_recency_high,
        is_frequency_high,
        is_monetary_high,
        rfm_segment_code,
        rfm_segment,
        lifecycle_stage,
        period_state,
        activity_tier,
        value_score,
        value_tier
    from layers
)

select * from final
