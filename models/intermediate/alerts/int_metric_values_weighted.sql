-- Every daily metric value with how it decomposes (seeds/metric_decompositions.csv) and, for a
-- ratio, the value of its denominator in the same segment and day: the weight the segment
-- carries in the overall value.
with

metric_values as {{ inline_cte() }} (
    select * from {{ ref('metric_values') }}
),

metric_decompositions as (
    select * from {{ ref('metric_decompositions') }}
),

final as (
    select
        metric_values.metric_date,
        metric_values.metric_code,
        metric_values.dimension,
        metric_values.dimension_value,
        metric_values.metric_value,
        metric_decompositions.decomposition_kind,
        metric_decompositions.denominator_metric_code,
        denominators.metric_value as denominator_value
    from metric_values
    left join metric_decompositions
        on metric_values.metric_code = metric_decompositions.metric_code
    left join metric_values as denominators
        on metric_decompositions.denominator_metric_code = denominators.metric_code
        and metric_values.metric_date = denominators.metric_date
        and metric_values.dimension = denominators.dimension
        and metric_values.dimension_value = denominators.dimension_value
)

select * from final
