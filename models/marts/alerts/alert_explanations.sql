-- The parts of each alert's explanation, ranked: the segments that moved the metric most in
-- every dimension, the DAU identity for DAU, the metric tree for GMV.
{%- set top_k = var('alert_explanation_top_k') | int %}
{%- set tree_factors = ['active_users', 'paying_rate', 'orders_per_payer', 'aov'] %}
with

alerts as {{ inline_cte() }} (
    select * from {{ ref('alerts') }}
),

metric_change_attributions as (
    select * from {{ ref('metric_change_attributions') }}
),

dau_change_decompositions as (
    select * from {{ ref('dau_change_decompositions') }}
),

north_star_decompositions as (
    select * from {{ ref('north_star_decompositions') }}
),

-- Overall alerts: the top segments of every dimension; a segment's alert: the top segments
-- of its own dimension, and itself wherever it ranks.
segment_parts as (
    select
        alerts.alert_id,
        'segments' as explanation_kind,
        metric_change_attributions.dimension,
        metric_change_attributions.dimension_value as component,
        metric_change_attributions.contribution,
        metric_change_attributions.part_of_change,
        metric_change_attributions.mix_effect,
        metric_change_attributions.rate_effect,
        metric_change_attributions.contribution_rank as part_rank
    from alerts
    inner join metric_change_attributions
        on alerts.metric_code = metric_change_attributions.metric_code
        and alerts.metric_date = metric_change_attributions.metric_date
        and (alerts.dimension = 'overall' or alerts.dimension = metric_change_attributions.dimension)
    where metric_change_attributions.contribution_rank <= {{ top_k }}
        or (
            alerts.dimension = metric_change_attributions.dimension
            and alerts.dimension_value = metric_change_attributions.dimension_value
        )
),

-- DAU = DAU a week before + new + resurrected - newly dormant (dau_change_decompositions).
dau_parts as (
    {%- for component, sign in [('new_users', ''), ('resurrected_users', ''), ('newly_dormant_users', '-')] %}
    select
        alerts.alert_id,
        'dau_identity' as explanation_kind,
        'dau_identity' as dimension,
        '{{ component }}' as component,
        cast({{ sign }}dau_change_decompositions.{{ component }} as double) as contribution,
        case
            when dau_change_decompositions.dau_change <> 0
                then cast({{ sign }}dau_change_decompositions.{{ component }} as double) / dau_change_decompositions.dau_change
        end as part_of_change,
        cast(null as double) as mix_effect,
        cast(null as double) as rate_effect,
        {{ loop.index }} as part_rank
    from alerts
    inner join dau_change_decompositions
        on alerts.metric_date = dau_change_decompositions.metric_date
        and dau_change_decompositions.comparison = 'week_over_week'
    where alerts.explanation_kind = 'dau_identity'
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

-- GMV = active users x paying rate x orders per payer x AOV, for the alert's own segment.
tree_parts as (
    {%- for factor in tree_factors %}
    select
        alerts.alert_id,
        'metric_tree' as explanation_kind,
        'metric_tree' as dimension,
        '{{ factor }}' as component,
        north_star_decompositions.{{ factor }}_effect as contribution,
        case
            when north_star_decompositions.gmv_change <> 0
                then north_star_decompositions.{{ factor }}_effect / north_star_decompositions.gmv_change
        end as part_of_change,
        cast(null as double) as mix_effect,
        cast(null as double) as rate_effect,
        {{ loop.index }} as part_rank
    from alerts
    inner join north_star_decompositions
        on alerts.metric_date = north_star_decompositions.metric_date
        and alerts.dimension = north_star_decompositions.dimension
        and alerts.dimension_value = north_star_decompositions.dimension_value
    where alerts.explanation_kind = 'metric_tree'
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

unioned as (
    select * from segment_parts
    union all
    select * from dau_parts
    union all
    select * from tree_parts
),

final as (
    select
        alert_id,
        explanation_kind,
        dimension,
        component,
        contribution,
        part_of_change,
        mix_effect,
        rate_effect,
        cast(part_rank as integer) as part_rank
    from unioned
)

select * from final
