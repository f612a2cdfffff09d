-- CLV scores in the shape the tag engine plugs in (var clv_scores_model): one row per user and
-- scoring date. Empty until the first run of the clv_scores asset writes ml.clv_scores.
with

clv_scores as (
    {{ clv_scores_or_empty() }}
),

final as (
    select
        user_id,
        scored_date as as_of_date,
        predicted_value_90d,
        predicted_value_365d,
        predicted_value_tier
    from clv_scores
)

select * from final
