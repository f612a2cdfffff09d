-- One row per user and as-of date: every layer dimension (用户分层) assigned from the as-of facts.
-- Each dimension puts every user signed up by the as-of date in exactly one layer; definitions
-- and thresholds are dbt vars (dbt_project.yml) and documented in int_user_layers_assigned.yml.
{%- set split_method = var('rfm_split_method') %}
{%- if split_method not in ['mean', 'median', 'fixed'] %}
    {{ exceptions.raise_compiler_error(
        "var rfm_split_method must be mean, median or fixed, got '" ~ split_method ~ "'"
    ) }}
{%- endif %}
{%- set fixed = var('rfm_fixed_thresholds') %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[as_of_window_delete_hook('int_users_as_of_aggregated')],
    )
}}
-- Incremental by as-of date like int_users_as_of_aggregated (macros/incremental/day_windows.sql).

with

users_as_of as {{ inline_cte() }} (
    select * from {{ ref('int_users_as_of_aggregated') }}
    {{ as_of_window_where('as_of_date') }}
),

rfm_values as (
    select
        user_id,
        as_of_date,
        lifetime_paid_orders > 0 as has_purchased,
        days_since_last_paid_order as recency_days,
        rfm_paid_orders as frequency,
        rfm_paid_amount as monetary
    from users_as_of
),

-- Thresholds over users who have bought by the as-of date.
rfm_thresholds as (
    select
        as_of_date,
        {%- if split_method == 'mean' %}
        avg(recency_days) as recency_threshold,
        avg(frequency) as frequency_threshold,
        avg(monetary) as monetary_threshold
        {%- elif split_method == 'median' %}
        {{ median_of('recency_days') }} as recency_threshold,
        {{ median_of('frequency') }} as frequency_threshold,
        {{ median_of('monetary') }} as monetary_threshold
        {%- else %}
        {{ fixed['recency_days'] }} as recency_threshold,
        {{ fixed['frequency'] }} as frequency_threshold,
        {{ fixed['monetary'] }} as monetary_threshold
        {%- endif %}
    from rfm_values
    where has_purchased
    group by as_of_date
),

-- 1-5 scores by quintile among buyers: score = ceil(5 * k / n), k = buyers with a value no
-- better than the user's (peers included), n = buyers; equal values always share a score.
-- Integer arithmetic, so a score never depends on floating-point rounding.
rfm_ranked as (
    select
        rfm_values.*,
        count(*) over (
            partition by rfm_values.as_of_date, rfm_values.has_purchased
        ) as buyers,
        count(*) over (
            partition by rfm_values.as_of_date, rfm_values.has_purchased
            order by rfm_values.recency_days desc
        ) as recency_rank,
        count(*) over (
            partition by rfm_values.as_of_date, rfm_values.has_purchased
            order by rfm_values.frequency
        ) as frequency_rank,
        count(*) over (
            partition by rfm_values.as_of_date, rfm_values.has_purchased
            order by rfm_values.monetary
        ) as monetary_rank
    from rfm_values
),

rfm_scored as (
    select
        rfm_ranked.user_id,
        rfm_ranked.as_of_date,
        rfm_ranked.has_purchased,
        rfm_ranked.recency_days,
        rfm_ranked.frequency,
        rfm_ranked.monetary,
        cast(floor((5 * rfm_ranked.recency_rank + rfm_ranked.buyers - 1) / rfm_ranked.buyers) as integer)
            as r_score,
        cast(floor((5 * rfm_ranked.frequency_rank + rfm_ranked.buyers - 1) / rfm_ranked.buyers) as integer)
            as f_score,
        cast(floor((5 * rfm_ranked.monetary_rank + rfm_ranked.buyers - 1) / rfm_ranked.buyers) as integer)
            as m_score,
        cast(rfm_thresholds.recency_threshold as double) as recency_threshold,
        cast(rfm_thresholds.frequency_threshold as double) as frequency_threshold,
        cast(rfm_thresholds.monetary_threshold as double) as monetary_threshold,
        rfm_ranked.recency_days < rfm_thresholds.recency_threshold as is_recency_high,
        rfm_ranked.frequency > rfm_thresholds.frequency_threshold as is_frequency_high,
        rfm_ranked.monetary > rfm_thresholds.monetary_threshold as is_monetary_high
    from rfm_ranked
    left join rfm_thresholds
        on rfm_ranked.as_of_date = rfm_thresholds.as_of_date
),

rfm_segmented as (
    select
        user_id,
        as_of_date,
        recency_days,
        frequency,
        monetary,
        case when has_purchased then r_score end as r_score,
        case when has_purchased then f_score end as f_score,
        case when has_purchased then m_score end as m_score,
        recency_threshold,
        frequency_threshold,
        monetary_threshold,
        case when has_purchased then is_recency_high end as is_recency_high,
        case when has_purchased then is_frequency_high end as is_frequency_high,
        case when has_purchased then is_monetary_high end as is_monetary_high,
        case
            when not has_purchased then 'no_purchase'
            when is_recency_high and is_frequency_high and is_monetary_high then 'important_value'
            when is_recency_high and not is_frequency_high and is_monetary_high
                then 'important_develop'
            when not is_recency_high and is_frequency_high and is_monetary_high
                then 'important_maintain'
            when not is_recency_high and not is_frequency_high and is_monetary_high
                then 'important_retain'
            when is_recency_high and is_frequency_high and not is_monetary_high
                then 'general_value'
            when is_recency_high and not is_frequency_high and not is_monetary_high
                then 'general_develop'
            when not is_recency_high and is_frequency_high and not is_monetary_high
                then 'general_maintain'
            else 'general_retain'
        end as rfm_segment_code
    from rfm_scored
),

states as (
    select
        user_id,
        as_of_date,
        days_since_signup,
        last_active_date,
        days_since_last_active,
        activity_window_active_days,
        case
            when days_since_signup < {{ var('lifecycle_new_days') }} then 'new'
            when has_recent_return then 'reactivated'
            when days_since_last_active < {{ var('lifecycle_active_days') }} then 'active'
            when days_since_last_active < {{ var('lifecycle_churned_days') }} then 'silent'
            when last_active_date is null
                and days_since_signup < {{ var('lifecycle_churned_days') }} then 'silent'
            else 'churned'
        end as lifecycle_stage,
        case
            when days_since_signup < {{ var('period_state_days') }} then 'new'
            when period_active_days > 0 and previous_period_active_days > 0 then 'returning'
            when period_active_days > 0 then 'resurrecting'
            when previous_period_active_days > 0 then 'dormant'
            else 'inactive'
        end as period_state,
        case
            when first_active_date is null then 'potential'
            when days_since_last_active >= {{ var('lifecycle_churned_days') }} then 'churned'
            when activity_window_active_days >= {{ var('activity_heavy_min_days') }} then 'heavy'
            when activity_window_active_days >= {{ var('activity_normal_min_days') }} then 'normal'
            else 'light'
        end as activity_tier,
        -- Engagement-and-value score in [0, 1]: percentile ranks among all users as of the date.
        round(
            {{ var('value_tier_engagement_weight') }} * percent_rank() over (
                partition by as_of_date order by activity_window_active_days
            )
            + {{ var('value_tier_value_weight') }} * percent_rank() over (
                partition by as_of_date order by rfm_paid_amount
            ),
            6
        ) as value_score
    from users_as_of
),

value_ranked as (
    select
        user_id,
        as_of_date,
        value_score,
        rank() over (partition by as_of_date order by value_score desc) - 1 as users_scored_higher,
        rank() over (partition by as_of_date order by value_score) - 1 as users_scored_lower,
        count(*) over (partition by as_of_date) as users_as_of
    from states
),

-- 10/80/10: a tie group straddling a cut goes wholly to the outer tier (same score, same tier).
value_tiered as (
    select
        user_id,
        as_of_date,
        case
            when value_score > 0
                and users_scored_higher < {{ var('value_tier_core_share') }} * users_as_of
                then 'core'
            when users_scored_lower < {{ var('value_tier_marginal_share') }} * users_as_of
                then 'marginal'
            else 'normal'
        end as value_tier
    from value_ranked
),

final as (
    select
        states.user_id,
        states.as_of_date,
        states.days_since_signup,
        states.last_active_date,
        states.days_since_last_active,
        states.activity_window_active_days,
        rfm_segmented.recency_days,
        rfm_segmented.frequency,
        rfm_segmented.monetary,
        rfm_segmented.r_score,
        rfm_segmented.f_score,
        rfm_segmented.m_score,
        rfm_segmented.recency_threshold,
        rfm_segmented.frequency_threshold,
        rfm_segmented.monetary_threshold,
        rfm_segmented.is_recency_high,
        rfm_segmented.is_frequency_high,
        rfm_segmented.is_monetary_high,
        rfm_segmented.rfm_segment_code,
        case rfm_segmented.rfm_segment_code
            when 'important_value' then '重要价值'
            when 'important_develop' then '重要发展'
            when 'important_maintain' then '重要保持'
            when 'important_retain' then '重要挽留'
            when 'general_value' then '一般价值'
            when 'general_develop' then '一般发展'
            when 'general_maintain' then '一般保持'
            when 'general_retain' then '一般挽留'
            else '未购买'
        end as rfm_segment,
        states.lifecycle_stage,
        states.period_state,
        states.activity_tier,
        states.value_score,
        value_tiered.value_tier
    from states
    inner join rfm_segmented
        on states.user_id = rfm_segmented.user_id
        and states.as_of_date = rfm_segmented.as_of_date
    inner join value_tiered
        on states.user_id = value_tiered.user_id
        and states.as_of_date = value_tiered.as_of_date
)

select * from final
