-- Why a daily metric moved week over week, per breakdown segment: an exact additive split of
-- the overall change (additive metrics: each segment's own change; ratios: mix and rate
-- effects, seeds/metric_decompositions.csv).
with

metric_values as {{ inline_cte() }} (
    select * from {{ ref('int_metric_values_weighted') }}
),

-- A segment without a value on a day is absent that day (a ratio whose denominator is 0); a
-- dimension a metric is not broken down by (spend by platform, retention by layer) has none.
segments as {{ inline_cte() }} (
    select *
    from metric_values
    where decomposition_kind is not null
        and dimension <> 'overall'
        and metric_value is not null
),

overall as {{ inline_cte() }} (
    select
        metric_date,
        metric_code,
        metric_value
    from metric_values
    where dimension = 'overall'
),

-- The overall change explained: the day against the same weekday a week before, for metrics
-- defined on both days.
changes as (
    select
        current_day.metric_date,
        comparison_day.metric_date as comparison_date,
        current_day.metric_code,
        current_day.metric_value as current_total,
        comparison_day.metric_value as comparison_total,
        current_day.metric_value - comparison_day.metric_value as metric_change
    from overall as current_day
    inner join overall as comparison_day
        on current_day.metric_code = comparison_day.metric_code
        and comparison_day.metric_date = {{ dbt.dateadd('day', -7, 'current_day.metric_date') }}
    where current_day.metric_value is not null
        and comparison_day.metric_value is not null
),

-- Every segment seen on either day (a segment absent on one day has nothing there).
segment_keys as (
    select distinct
        metric_date,
        comparison_date,
        metric_code,
        dimension,
        dimension_value
    from (
        select
            changes.metric_date,
            changes.comparison_date,
            changes.metric_code,
            segments.dimension,
            segments.dimension_value
        from changes
        inner join segments
            on changes.metric_code = segments.metric_code
            and changes.metric_date = segments.metric_date
        union all
        select
            changes.metric_date,
            changes.comparison_date,
            changes.metric_code,
            segments.dimension,
            segments.dimension_value
        from changes
        inner join segments
            on changes.metric_code = segments.metric_code
            and changes.comparison_date = segments.metric_date
    ) as seen_on_either_day
),

paired as (
    select
        segment_keys.metric_date,
        segment_keys.comparison_date,
        segment_keys.metric_code,
        segment_keys.dimension,
        segment_keys.dimension_value,
        coalesce(current_day.decomposition_kind, comparison_day.decomposition_kind) as decomposition_kind,
        current_day.metric_value as current_value,
        comparison_day.metric_value as comparison_value,
        coalesce(current_day.denominator_value, 0) as current_denominator,
        coalesce(comparison_day.denominator_value, 0) as comparison_denominator
    from segment_keys
    left join segments as current_day
        on segment_keys.metric_code = current_day.metric_code
        and segment_keys.dimension = current_day.dimension
        and segment_keys.dimension_value = current_day.dimension_value
        and segment_keys.metric_date = current_day.metric_date
    left join segments as comparison_day
        on segment_keys.metric_code = comparison_day.metric_code
        and segment_keys.dimension = comparison_day.dimension
        and segment_keys.dimension_value = comparison_day.dimension_value
        and segment_keys.comparison_date = comparison_day.metric_date
),

weighted as (
    select
        *,
        sum(current_denominator) over (
            partition by metric_code, metric_date, dimension
        ) as current_denominator_total,
        sum(comparison_denominator) over (
            partition by metric_code, metric_date, dimension
        ) as comparison_denominator_total
    from paired
),

-- A ratio is the denominator-weighted mean of its segments' values. A segment with no
-- denominator on one day has weight 0 there and takes the other day's value (it then moves
-- the metric only through the mix).
rates as (
    select
        *,
        case when current_denominator_total > 0 then current_denominator / current_denominator_total else 0 end
            as current_weight,
        case when comparison_denominator_total > 0 then comparison_denominator / comparison_denominator_total else 0 end
            as comparison_weight,
        coalesce(
            case when current_denominator > 0 then current_value end,
            case when comparison_denominator > 0 then comparison_value end,
            0
        ) as current_rate,
        coalesce(
            case when comparison_denominator > 0 then comparison_value end,
            case when current_denominator > 0 then current_value end,
            0
        ) as comparison_rate
    from weighted
),

effects as (
    select
        rates.*,
        case
            when decomposition_kind = 'ratio'
                then (current_weight - comparison_weight) * (current_rate + comparison_rate) / 2
            else 0
        end as mix_effect,
        case
            when decomposition_kind = 'ratio'
                then (current_rate - comparison_rate) * (current_weight + comparison_weight) / 2
            else coalesce(current_value, 0) - coalesce(comparison_value, 0)
        end as rate_effect
    from rates
),

-- A segment's share of the metric (a ratio's: of its denominator), the mean of both days: if
-- every segment moved alike, each would contribute that share of the change.
shares as (
    select
        effects.*,
        case
            when decomposition_kind = 'ratio' then (current_weight + comparison_weight) / 2
            else (
                case when changes.current_total <> 0 then coalesce(current_value, 0) / changes.current_total else 0 end
                + case when changes.comparison_total <> 0 then coalesce(comparison_value, 0) / changes.comparison_total else 0 end
            ) / 2
        end as metric_share
    from effects
    inner join changes
        on effects.metric_code = changes.metric_code
        and effects.metric_date = changes.metric_date
),

ranked as (
    select
        effects.*,
        effects.mix_effect + effects.rate_effect as contribution,
        changes.metric_change,
        effects.mix_effect + effects.rate_effect - changes.metric_change * effects.metric_share
            as excess_contribution,
        row_number() over (
            partition by effects.metric_code, effects.metric_date, effects.dimension
            order by abs(effects.mix_effect + effects.rate_effect) desc, effects.dimension_value
        ) as contribution_rank
    from shares as effects
    inner join changes
        on effects.metric_code = changes.metric_code
        and effects.metric_date = changes.metric_date
),

final as (
    select
        metric_date,
        comparison_date,
        metric_code,
        dimension,
        dimension_value,
        decomposition_kind,
        current_value,
        comparison_value,
        case when decomposition_kind = 'ratio' then current_weight end as current_weight,
        case when decomposition_kind = 'ratio' then comparison_weight end as comparison_weight,
        mix_effect,
        rate_effect,
        contribution,
        metric_change,
        case when metric_change <> 0 then contribution / metric_change end as part_of_change,
        metric_share,
        excess_contribution,
        cast(contribution_rank as integer) as contribution_rank
    from ranked
)

select * from final
