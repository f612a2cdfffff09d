-- The scored metric series (var alert_dimensions) with each day's level, the mean of the
-- seven days before it (a whole week, so weekday effects cancel), and the day's value as a
-- multiple of that level (its weekday factor that week).
{%- set dimensions = var('alert_dimensions') %}
with

metric_values as (
    select * from {{ ref('int_metric_values_weighted') }}
),

scored_series as (
    select *
    from metric_values
    where dimension in ({% for dimension in dimensions %}'{{ dimension }}'{% if not loop.last %}, {% endif %}{% endfor %})
),

-- metric_values has a row for every day and segment (a series never skips a day), so the
-- seven rows before a row are the seven days before it.
levelled as (
    select
        *,
        avg(metric_value) over (
            partition by metric_code, dimension, dimension_value
            order by metric_date
            rows between 7 preceding and 1 preceding
        ) as level_value,
        count(metric_value) over (
            partition by metric_code, dimension, dimension_value
            order by metric_date
            rows between 7 preceding and 1 preceding
        ) as level_days
    from scored_series
),

final as (
    select
        metric_date,
        metric_code,
        dimension,
        dimension_value,
        metric_value,
        decomposition_kind,
        denominator_value,
        level_value,
        cast(level_days as integer) as level_days,
        case
            when level_days = 7 and level_value <> 0 then metric_value / level_value
        end as level_ratio
    from levelled
)

select * from final
