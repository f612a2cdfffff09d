-- Churn scores in the shape the tag engine plugs in (var churn_scores_model): one row per user
-- and scoring date. Empty until the first training writes ml.churn_scores.
with

churn_scores as (
    {{ churn_scores_or_empty() }}
),

final as (
    select
        user_id,
        scored_date as as_of_date,
        churn_probability as churn_score,
        risk_tier,
        model_version
    from churn_scores
)

select * from final
