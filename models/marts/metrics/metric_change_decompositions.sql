-- Why a metric moved month over month: mix versus rate across each group dimension, for the
-- repurchase rate and GMV. One row per (metric_code, order_month, dimension, dimension_value).
-- metric = sum over groups of weight x unit value; the unit value is a rate only for the
-- repurchase rate (for GMV it is GMV per buyer), hence not named *_rate.
-- Of the layer dimensions only var decomposition_layer is decomposed.
{%- set other_layers = metric_layer_dimensions() | reject('equalto', decomposition_layer()) | list %}
with

monthly_repurchase as {{ inline_cte() }} (
    select * from {{ ref('monthly_repurchase_rates') }}
),

totals as (
    select
        order_month,
        buyers as total_buyers,
        repurchase_rate as total_repurchase_rate,
        gmv as total_gmv
    from monthly_repurchase
    where group_dimension = 'overall'
),

month_pairs as (
    -- Only months whose previous calendar month had buyers can be compared.
    select
        current_month.order_month,
        previous_month.order_month as previous_month,
        current_month.total_buyers,
        previous_month.total_buyers as previous_total_buyers,
        current_month.total_repurchase_rate,
        previous_month.total_repurchase_rate as previous_total_repurchase_rate,
        current_month.total_gmv,
        previous_month.total_gmv as previous_total_gmv
    from totals as current_month
    inner join totals as previous_month
        on previous_month.order_month = {{ add_periods('month', -1, 'current_month.order_month') }}
),

group_values as (
    select distinct group_dimension, group_value
    from monthly_repurchase
    where group_dimension <> 'overall'
    {%- if other_layers %}
        and group_dimension not in ('{{ other_layers | join("', '") }}')
    {%- endif %}
),

pair_groups as (
    select
        month_pairs.*,
        group_values.group_dimension,
        group_values.group_value,
        coalesce(current_group.buyers, 0) as buyers,
        coalesce(previous_group.buyers, 0) as previous_buyers,
        current_group.repurchase_rate,
        previous_group.repurchase_rate as previous_repurchase_rate,
        {{ safe_ratio('current_group.gmv', 'current_group.buyers') }} as gmv_per_buyer,
        {{ safe_ratio('previous_group.gmv', 'previous_group.buyers') }} as previous_gmv_per_buyer
    from month_pairs
    cross join group_values
    left join monthly_repurchase as current_group
        on current_group.order_month = month_pairs.order_month
        and current_group.group_dimension = group_values.group_dimension
        and current_group.group_value = group_values.group_value
    left join monthly_repurchase as previous_group
        on previous_group.order_month = month_pairs.previous_month
        and previous_group.group_dimension = group_values.group_dimension
        and previous_group.group_value = group_values.group_value
    where current_group.buyers is not null
        or previous_group.buyers is not null
),

repurchase_parts as (
    -- Rate = sum of (buyer share x group rate). A group missing in one month has weight 0
    -- there and takes the other month's unit value, so its whole contribution is mix.
    select
        'repurchase_rate' as metric_code,
        order_month,
        previous_month,
        group_dimension as dimension,
        group_value as dimension_value,
        {{ safe_ratio('previous_buyers', 'previous_total_buyers') }} as previous_weight,
        {{ safe_ratio('buyers', 'total_buyers') }} as current_weight,
        coalesce(previous_repurchase_rate, repurchase_rate) as previous_unit_value,
        coalesce(repurchase_rate, previous_repurchase_rate) as current_unit_value,
        previous_total_repurchase_rate as previous_metric_value,
        total_repurchase_rate as current_metric_value
    from pair_groups
),

gmv_parts as (
    -- GMV = sum of (paying users x GMV per paying user) per group.
    select
        'gmv' as metric_code,
        order_month,
        previous_month,
        group_dimension as dimension,
        group_value as dimension_value,
        cast(previous_buyers as double) as previous_weight,
        cast(buyers as double) as current_weight,
        coalesce(previous_gmv_per_buyer, gmv_per_buyer) as previous_unit_value,
        coalesce(gmv_per_buyer, previous_gmv_per_buyer) as current_unit_value,
        previous_total_gmv as previous_metric_value,
        total_gmv as current_metric_value
    from pair_groups
),

all_parts as (
    select * from repurchase_parts
    union all
    select * from gmv_parts
),

final as (
    select
        metric_code,
        order_month,
        previous_month,
        dimension,
        dimension_value,
        previous_weight,
        current_weight,
        previous_unit_value,
        current_unit_value,
        (current_weight - previous_weight) * (previous_unit_value + current_unit_value) / 2 as mix_effect,
        (current_unit_value - previous_unit_value) * (previous_weight + current_weight) / 2 as rate_effect,
        previous_metric_value,
        current_metric_value,
        current_metric_value - previous_metric_value as metric_change
    from all_parts
)

select * from final
