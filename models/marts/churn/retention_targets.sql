-- One row per user at high or medium churn risk in the latest scoring, with the profile a
-- campaign needs and the suggested action from seeds/retention_actions.csv.
with

churn_scores as (
    -- Empty until the first training writes ml.churn_scores (macros/churn).
    {{ churn_scores_or_empty() }}
),

users as (
    select * from {{ ref('users') }}
),

orders as (
    select * from {{ ref('stg_landing__orders') }}
),

order_items as (
    select * from {{ ref('stg_landing__order_items') }}
),

events as (
    select * from {{ ref('stg_landing__events') }}
),

retention_actions as (
    select * from {{ ref('retention_actions') }}
),

latest_scores as (
    select churn_scores.*
    from churn_scores
    inner join (
        select max(scored_date) as scored_date
        from churn_scores
    ) as latest
        on churn_scores.scored_date = latest.scored_date
    where churn_scores.risk_tier in ('high', 'medium')
),

category_signals as (
    -- Paid order lines weigh 10 views each: what people buy says more than what they browse.
    select
        orders.user_id,
        order_items.category,
        10 * count(*) as weight
    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    inner join latest_scores
        on orders.user_id = latest_scores.user_id
        and orders.order_date <= latest_scores.scored_date
    where orders.is_paid and order_items.category is not null
    group by orders.user_id, order_items.category

    union all

    select
        events.user_id,
        events.category,
        count(*) as weight
    from events
    inner join latest_scores
        on events.user_id = latest_scores.user_id
        and events.event_date <= latest_scores.scored_date
    where events.category is not null
    group by events.user_id, events.category
),

category_ranks as (
    select
        user_id,
        category,
        row_number() over (
            partition by user_id
            order by sum(weight) desc, category
        ) as category_rank
    from category_signals
    group by user_id, category
),

preferred_categories as (
    select
        user_id,
        category as preferred_category
    from category_ranks
    where category_rank = 1
),

targets as (
    select
        latest_scores.user_id,
        latest_scores.scored_date,
        latest_scores.churn_probability,
        latest_scores.risk_tier,
        latest_scores.model_version,
        users.gender,
        users.city_tier,
        users.city,
        users.acquisition_channel,
        preferred_categories.preferred_category
    from latest_scores
    left join users
        on latest_scores.user_id = users.user_id
    left join preferred_categories
        on latest_scores.user_id = preferred_categories.user_id
),

final as (
    select
        targets.user_id,
        targets.scored_date,
        targets.churn_probability,
        targets.risk_tier,
        targets.model_version,
        targets.gender,
        targets.city_tier,
        targets.city,
        targets.acquisition_channel,
        targets.preferred_category,
        -- The category's own row wins over the tier's '*' fallback.
        coalesce(category_action.action_code, fallback_action.action_code) as action_code,
        coalesce(category_action.action_name, fallback_action.action_name) as action_name,
        coalesce(category_action.action_channel, fallback_action.action_channel)
            as action_channel
    from targets
    left join retention_actions as category_action
        on targets.risk_tier = category_action.risk_tier
        and targets.preferred_category = category_action.preferred_category
    left join retention_actions as fallback_action
        on targets.risk_tier = fallback_action.risk_tier
        and fallback_action.preferred_category = '*'
)

select * from final
