-- One row per (risk tier, suggested action) of retention_targets: campaign size and audience mix.
with

retention_targets as (
    select * from {{ ref('retention_targets') }}
),

final as (
    select
        risk_tier,
        action_code,
        max(action_name) as action_name,
        max(action_channel) as action_channel,
        count(*) as target_users,
        avg(churn_probability) as mean_churn_probability,
        cast(avg(case when gender = 'female' then 1 else 0 end) as double) as female_share,
        cast(avg(case when gender = 'male' then 1 else 0 end) as double) as male_share,
        cast(avg(case when city_tier in (1, 2) then 1 else 0 end) as double)
            as tier_1_2_city_share,
        cast(avg(case when preferred_category is not null then 1 else 0 end) as double)
            as known_category_share
    from retention_targets
    group by risk_tier, action_code
)

select * from final
