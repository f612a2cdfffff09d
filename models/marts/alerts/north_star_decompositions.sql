-- The north star's metric tree, week over week: GMV = active users x paying rate x orders per
-- payer x average order value, its change split exactly into the four factors' Shapley effects.
{%- set factor_names = ['active_users', 'paying_rate', 'orders_per_payer', 'aov'] %}
{%- set effects = shapley_effects([
    ('current_active_users', 'comparison_active_users'),
    ('current_paying_rate', 'comparison_paying_rate'),
    ('current_orders_per_payer', 'comparison_orders_per_payer'),
    ('current_aov', 'comparison_aov'),
]) %}
with

metric_values as {{ inline_cte() }} (
    select * from {{ ref('metric_values') }}
),

-- One row per segment and day with the tree's leaves (additive, so every segment has them).
leaves as {{ inline_cte() }} (
    select
        metric_date,
        dimension,
        dimension_value,
        sum(case when metric_code = 'dau' then metric_value else 0 end) as active_users,
        sum(case when metric_code = 'paying_users' then metric_value else 0 end) as paying_users,
        sum(case when metric_code = 'orders' then metric_value else 0 end) as orders,
        sum(case when metric_code = 'gmv' then metric_value else 0 end) as gmv
    from metric_values
    where metric_code in ('dau', 'paying_users', 'orders', 'gmv')
    group by metric_date, dimension, dimension_value
),

-- A factor whose denominator is 0 is 0: then the product is 0, as GMV is (no active user
-- pays, no payer orders), so the tree still multiplies out exactly.
factors as {{ inline_cte() }} (
    select
        metric_date,
        dimension,
        dimension_value,
        gmv,
        active_users,
        case when active_users > 0 then paying_users / active_users else 0 end as paying_rate,
        case when paying_users > 0 then orders / paying_users else 0 end as orders_per_payer,
        case when orders > 0 then gmv / orders else 0 end as aov
    from leaves
),

paired as (
    select
        current_day.metric_date,
        comparison_day.metric_date as comparison_date,
        current_day.dimension,
        current_day.dimension_value,
        current_day.gmv as current_gmv,
        comparison_day.gmv as comparison_gmv,
        {%- for name in factor_names %}
        current_day.{{ name }} as current_{{ name }},
        comparison_day.{{ name }} as comparison_{{ name }},
        {%- endfor %}
        current_day.gmv - comparison_day.gmv as gmv_change
    from factors as current_day
    inner join factors as comparison_day
        on current_day.dimension = comparison_day.dimension
        and current_day.dimension_value = comparison_day.dimension_value
        and comparison_day.metric_date = {{ dbt.dateadd('day', -7, 'current_day.metric_date') }}
),

final as (
    select
        metric_date,
        comparison_date,
        dimension,
        dimension_value,
        current_gmv,
        comparison_gmv,
        gmv_change,
        {%- for name in factor_names %}
        current_{{ name }},
        comparison_{{ name }},
        {%- endfor %}
        {%- for name in factor_names %}
        {{ effects[loop.index0] }} as {{ name }}_effect{% if not loop.last %},{% endif %}
        {%- endfor %}
    from paired
)

select * from final
