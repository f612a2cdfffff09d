-- One row per user on the latest as-of date: a wide user profile (用户画像) BI can filter on, with
-- the standard tags as columns and the layers. Tags added to the catalogue later appear in
-- user_tags; they get a column here when this model is extended.
with

users as (
    select * from {{ ref('users') }}
),

users_as_of as (
    select * from {{ ref('int_users_as_of_aggregated') }}
),

layers as (
    select * from {{ ref('int_user_layers_assigned') }}
),

tags as (
    select * from {{ ref('int_user_tags_evaluated') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

latest as (
    select as_of_date
    from as_of_dates
    where is_latest
),

tags_wide as (
    select
        tags.user_id,
        max(case when tags.tag_code = 'age_band' then tags.tag_value end) as age_band,
        max(case when tags.tag_code = 'city_tier' then tags.tag_value end) as city_tier_label,
        max(case when tags.tag_code = 'night_owl' then tags.tag_value end) = 'true'
            as is_night_owl,
        max(case when tags.tag_code = 'weekend_user' then tags.tag_value end) = 'true'
            as is_weekend_user,
        max(case when tags.tag_code = 'search_heavy' then tags.tag_value end) = 'true'
            as is_search_heavy,
        max(case when tags.tag_code = 'push_responsive' then tags.tag_value end) = 'true'
            as is_push_responsive,
        max(case when tags.tag_code = 'coupon_dependent' then tags.tag_value end) = 'true'
            as is_coupon_dependent,
        max(case when tags.tag_code = 'spend_band' then tags.tag_value end) as spend_band,
        max(case when tags.tag_code = 'aov_band' then tags.tag_value end) as aov_band,
        max(case when tags.tag_code = 'churn_risk' then tags.tag_value end) as churn_risk
    from tags
    inner join latest
        on tags.as_of_date = latest.as_of_date
    group by tags.user_id
),

final as (
    select
        users.user_id,
        latest.as_of_date,
        users.signup_date,
        users.acquisition_channel,
        users.gender,
        tags_wide.age_band,
        users.city_tier,
        tags_wide.city_tier_label,
        users_as_of.active_days_7d,
        users_as_of.active_days_30d,
        users_as_of.sessions_30d,
        coalesce(tags_wide.is_night_owl, false) as is_night_owl,
        coalesce(tags_wide.is_weekend_user, false) as is_weekend_user,
        coalesce(tags_wide.is_search_heavy, false) as is_search_heavy,
        coalesce(tags_wide.is_push_responsive, false) as is_push_responsive,
        coalesce(tags_wide.is_coupon_dependent, false) as is_coupon_dependent,
        users_as_of.rfm_paid_orders as paid_orders_rfm_window,
        users_as_of.rfm_paid_amount as paid_amount_rfm_window,
        tags_wide.spend_band,
        tags_wide.aov_band,
        users_as_of.top_category,
        users_as_of.preferred_platform,
        layers.rfm_segment_code,
        layers.rfm_segment,
        layers.lifecycle_stage,
        layers.period_state,
        layers.activity_tier,
        layers.value_tier,
        tags_wide.churn_risk
    from users
    cross join latest
    inner join users_as_of
        on users.user_id = users_as_of.user_id
        and latest.as_of_date = users_as_of.as_of_date
    inner join layers
        on users.user_id = layers.user_id
        and latest.as_of_date = layers.as_of_date
    left join tags_wide
        on users.user_id = tags_wide.user_id
)

select * from final
