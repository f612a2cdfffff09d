-- The DAU identity and the GMV metric tree explain an alert exactly: their parts add up to
-- the alert's week-over-week change (to a float tolerance).
-- A check of alert_explanations in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'alert_explanations'}}}) }}
with

alerts as (
    select * from {{ ref('alerts') }}
),

alert_explanations as (
    select * from {{ ref('alert_explanations') }}
),

sums as (
    select
        alert_id,
        explanation_kind,
        sum(contribution) as sum_of_parts
    from alert_explanations
    where explanation_kind in ('dau_identity', 'metric_tree')
    group by alert_id, explanation_kind
),

final as (
    select
        alerts.alert_id,
        alerts.metric_code,
        alerts.metric_date,
        sums.explanation_kind,
        sums.sum_of_parts,
        alerts.week_over_week_change
    from sums
    inner join alerts
        on sums.alert_id = alerts.alert_id
    where alerts.week_over_week_change is null
        or abs(sums.sum_of_parts - alerts.week_over_week_change)
        > 0.000001 * (1 + abs(alerts.week_over_week_change))
)

select * from final
