-- Each scored metric series' expected value on every day and how far the day is from it: a
-- level times a weekday factor, and a robust score (vars alert_*).
{%- set weeks = var('alert_baseline_weeks') | int %}
with

metric_levels as {{ inline_cte() }} (
    select * from {{ ref('int_metric_levels_computed') }}
),

weeks_back as (
    {%- for week in range(1, weeks + 1) %}
    select {{ week }} as weeks_back
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

-- The weekday factor of a day: the median of the same weekday's level ratios in the weeks
-- before it.
weekday_factors as (
    select
        metric_levels.metric_date,
        metric_levels.metric_code,
        metric_levels.dimension,
        metric_levels.dimension_value,
        count(*) as baseline_weeks,
        {{ exact_median('earlier.level_ratio') }} as weekday_factor
    from metric_levels
    cross join weeks_back
    inner join metric_levels as earlier
        on metric_levels.metric_code = earlier.metric_code
        and metric_levels.dimension = earlier.dimension
        and metric_levels.dimension_value = earlier.dimension_value
        and earlier.metric_date = {{ dbt.dateadd('day', '-7 * weeks_back.weeks_back', 'metric_levels.metric_date') }}
    where earlier.level_ratio is not null
    group by
        metric_levels.metric_date,
        metric_levels.metric_code,
        metric_levels.dimension,
        metric_levels.dimension_value
),

baselines as {{ inline_cte() }} (
    select
        metric_levels.*,
        coalesce(weekday_factors.baseline_weeks, 0) as baseline_weeks,
        weekday_factors.weekday_factor,
        case
            when metric_levels.level_days = 7
                and weekday_factors.baseline_weeks >= {{ var('alert_min_baseline_weeks') }}
                then metric_levels.level_value * weekday_factors.weekday_factor
        end as baseline_value
    from metric_levels
    left join weekday_factors
        on metric_levels.metric_date = weekday_factors.metric_date
        and metric_levels.metric_code = weekday_factors.metric_code
        and metric_levels.dimension = weekday_factors.dimension
        and metric_levels.dimension_value = weekday_factors.dimension_value
),

-- The spread: the median absolute residual (a day's value minus its own baseline) over the
-- var alert_spread_days days before, a longer history than one weekday's few values.
spreads as (
    select
        baselines.metric_date,
        baselines.metric_code,
        baselines.dimension,
        baselines.dimension_value,
        count(*) as spread_days,
        {{ exact_median('abs(earlier.metric_value - earlier.baseline_value)') }} as median_absolute_deviation
    from baselines
    inner join baselines as earlier
        on baselines.metric_code = earlier.metric_code
        and baselines.dimension = earlier.dimension
        and baselines.dimension_value = earlier.dimension_value
        and earlier.metric_date < baselines.metric_date
        and earlier.metric_date >= {{ dbt.dateadd('day', -(var('alert_spread_days') | int), 'baselines.metric_date') }}
    where earlier.metric_value is not null
        and earlier.baseline_value is not null
    group by baselines.metric_date, baselines.metric_code, baselines.dimension, baselines.dimension_value
),

spread as (
    select
        baselines.*,
        coalesce(spreads.spread_days, 0) as spread_days,
        spreads.median_absolute_deviation,
        greatest(
            1.4826 * spreads.median_absolute_deviation,
            {{ var('alert_min_relative_spread') }} * abs(baselines.baseline_value)
        ) as baseline_spread,
        -- Volume: a ratio's denominator on the day, an additive metric's baseline.
        case
            when baselines.decomposition_kind = 'ratio' then baselines.denominator_value
            else abs(baselines.baseline_value)
        end as volume
    from baselines
    left join spreads
        on baselines.metric_date = spreads.metric_date
        and baselines.metric_code = spreads.metric_code
        and baselines.dimension = spreads.dimension
        and baselines.dimension_value = spreads.dimension_value
),

scored as (
    select
        *,
        case
            when metric_value is not null
                and baseline_value is not null
                and spread_days >= {{ var('alert_min_spread_days') }}
                and baseline_spread > 0
                and (dimension = 'overall' or volume >= {{ var('alert_min_volume') }})
                then (metric_value - baseline_value) / baseline_spread
        end as robust_score
    from spread
),

final as (
    select
        metric_date,
        metric_code,
        dimension,
        dimension_value,
        metric_value,
        level_value,
        weekday_factor,
        baseline_value,
        cast(baseline_weeks as integer) as baseline_weeks,
        cast(spread_days as integer) as spread_days,
        median_absolute_deviation,
        baseline_spread,
        volume,
        robust_score,
        robust_score is not null as is_scored,
        case
            when abs(robust_score) >= {{ var('alert_error_score') }} then 'error'
            when abs(robust_score) >= {{ var('alert_warn_score') }} then 'warn'
        end as severity,
        case
            when robust_score >= {{ var('alert_warn_score') }} then 'up'
            when robust_score <= -{{ var('alert_warn_score') }} then 'down'
        end as direction
    from scored
)

select * from final
