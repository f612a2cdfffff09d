-- One row per metric series and day whose value is far from its seasonal baseline
-- (metric_baselines.severity), with the headline of its explanation.
with

metric_baselines as (
    select * from {{ ref('metric_baselines') }}
),

metric_change_attributions as {{ inline_cte() }} (
    select * from {{ ref('metric_change_attributions') }}
),

metric_catalogue as (
    select * from {{ ref('metric_catalogue') }}
),

anomalies as (
    select *
    from metric_baselines
    where severity is not null
),

latest as (
    select max(metric_date) as latest_metric_date
    from metric_baselines
),

-- The segment that explains most of the overall change beyond its size, over every dimension
-- (each dimension's contributions add up to the same change, so they compare across
-- dimensions; a segment that is the whole metric explains nothing by being it).
overall_top_segments as (
    select
        metric_date,
        metric_code,
        dimension as top_dimension,
        dimension_value as top_dimension_value,
        contribution as top_contribution,
        part_of_change as top_part_of_change,
        row_number() over (
            partition by metric_code, metric_date
            order by abs(excess_contribution) desc, dimension, dimension_value
        ) as overall_rank
    from metric_change_attributions
),

-- A segment's alert: the segment's own part in the overall change and its rank in its
-- dimension.
own_segments as (
    select
        metric_date,
        metric_code,
        dimension,
        dimension_value,
        comparison_date,
        comparison_value,
        contribution,
        part_of_change,
        contribution_rank,
        metric_change
    from metric_change_attributions
),

changes as (
    select distinct
        metric_date,
        comparison_date,
        metric_code,
        metric_change
    from metric_change_attributions
),

explained as (
    select
        anomalies.*,
        metric_catalogue.name_zh as metric_name_zh,
        metric_catalogue.name_en as metric_name_en,
        coalesce(own_segments.comparison_date, changes.comparison_date) as comparison_date,
        case
            when anomalies.dimension = 'overall' then anomalies.metric_value - changes.metric_change
            else own_segments.comparison_value
        end as comparison_value,
        changes.metric_change as overall_change,
        case
            when anomalies.dimension = 'overall' then overall_top_segments.top_dimension
            else anomalies.dimension
        end as top_dimension,
        case
            when anomalies.dimension = 'overall' then overall_top_segments.top_dimension_value
            else anomalies.dimension_value
        end as top_dimension_value,
        case
            when anomalies.dimension = 'overall' then overall_top_segments.top_contribution
            else own_segments.contribution
        end as top_contribution,
        case
            when anomalies.dimension = 'overall' then overall_top_segments.top_part_of_change
            else own_segments.part_of_change
        end as top_part_of_change,
        case when anomalies.dimension <> 'overall' then own_segments.contribution_rank end
            as segment_rank_in_dimension,
        case
            when anomalies.metric_code = 'dau' and anomalies.dimension = 'overall' then 'dau_identity'
            when anomalies.metric_code = 'gmv' then 'metric_tree'
            when changes.metric_change is not null then 'segments'
        end as explanation_kind
    from anomalies
    inner join metric_catalogue
        on anomalies.metric_code = metric_catalogue.metric_code
    left join changes
        on anomalies.metric_code = changes.metric_code
        and anomalies.metric_date = changes.metric_date
    left join overall_top_segments
        on anomalies.metric_code = overall_top_segments.metric_code
        and anomalies.metric_date = overall_top_segments.metric_date
        and overall_top_segments.overall_rank = 1
    left join own_segments
        on anomalies.metric_code = own_segments.metric_code
        and anomalies.metric_date = own_segments.metric_date
        and anomalies.dimension = own_segments.dimension
        and anomalies.dimension_value = own_segments.dimension_value
),

final as (
    select
        {{ dbt.hash("metric_code || '|' || dimension || '|' || dimension_value || '|' || cast(metric_date as " ~ dbt.type_string() ~ ")") }}
            as alert_id,
        explained.metric_date,
        explained.metric_code,
        explained.metric_name_zh,
        explained.metric_name_en,
        explained.dimension,
        explained.dimension_value,
        explained.severity,
        explained.direction,
        explained.metric_value,
        explained.baseline_value,
        explained.baseline_spread,
        explained.robust_score,
        explained.comparison_date,
        explained.comparison_value,
        explained.metric_value - explained.comparison_value as week_over_week_change,
        explained.overall_change,
        explained.explanation_kind,
        explained.top_dimension,
        explained.top_dimension_value,
        explained.top_contribution,
        explained.top_part_of_change,
        cast(explained.segment_rank_in_dimension as integer) as segment_rank_in_dimension,
        explained.metric_date = latest.latest_metric_date as is_latest_day
    from explained
    cross join latest
)

select * from final
