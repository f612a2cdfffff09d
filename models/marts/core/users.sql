-- One row per known user: profile and first activity, for BI filters and every user-level mart.
with

users_unified as (
    select * from {{ ref('int_users_unified') }}
),

final as (
    select
        user_id,
        signup_at,
        signup_date,
        acquisition_channel,
        platform,
        gender,
        birth_year,
        city,
        city_tier,
        first_ordered_at,
        first_order_date,
        first_event_at,
        is_derived_from_activity
    from users_unified
)

select * from final
