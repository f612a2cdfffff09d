-- One row per period grain (week, month), period close, layer dimension, from-layer and
-- to-layer: how many users moved from each layer at the previous period close to each layer at
-- this close (用户分层迁移). Users who signed up in between come from 'not_registered'.
{%- set dimensions = ['rfm_segment', 'lifecycle_stage', 'period_state', 'activity_tier', 'value_tier'] %}
--
-- Incremental by as-of date like int_user_layers_assigned (macros/incremental/day_windows.sql):
-- a day-partitioned run recomputes the period closes from its window's first day on, reading the
-- layers of those closes and of the closes before them only; the pre-hook deletes those closes
-- and the ones no longer selected. A plain dbt build recomputes every close.

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[as_of_window_delete_hook('int_as_of_dates_selected')],
    )
}}

with

layers as (
    select * from {{ ref('int_user_layers_assigned') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

week_periods as (
    select
        'week' as period_grain,
        as_of_date,
        lag(as_of_date) over (order by as_of_date) as previous_as_of_date
    from as_of_dates
    where is_week_close
),

month_periods as (
    select
        'month' as period_grain,
        as_of_date,
        lag(as_of_date) over (order by as_of_date) as previous_as_of_date
    from as_of_dates
    where is_month_close
),

periods as (
    select * from week_periods
    where previous_as_of_date is not null
    union all
    select * from month_periods
    where previous_as_of_date is not null
),

run_periods as (
    select * from periods
    {{ as_of_window_where('as_of_date') }}
),

-- The layers of the run's closes and of the closes before them.
run_layers as (
    select layers.*
    from layers
    where layers.as_of_date in (
        select as_of_date from run_periods
        union
        select previous_as_of_date from run_periods
    )
),

layer_values as (
    {%- for dimension in dimensions %}
    select
        user_id,
        as_of_date,
        '{{ dimension }}' as layer_dimension,
        {{ 'rfm_segment_code' if dimension == 'rfm_segment' else dimension }} as layer
    from run_layers
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

transitions as (
    select
        run_periods.period_grain,
        run_periods.as_of_date,
        run_periods.previous_as_of_date,
        current_values.layer_dimension,
        coalesce(previous_values.layer, 'not_registered') as from_layer,
        current_values.layer as to_layer,
        current_values.user_id
    from run_periods
    inner join layer_values as current_values
        on run_periods.as_of_date = current_values.as_of_date
    left join layer_values as previous_values
        on current_values.user_id = previous_values.user_id
        and current_values.layer_dimension = previous_values.layer_dimension
        and run_periods.previous_as_of_date = previous_values.as_of_date
),

final as (
    select
        period_grain,
        as_of_date,
        previous_as_of_date,
        layer_dimension,
        from_layer,
        to_layer,
        from_layer = to_layer as is_same_layer,
        count(*) as user_count
    from transitions
    group by
        period_grain,
        as_of_date,
        previous_as_of_date,
        layer_dimension,
        from_layer,
        to_layer
)

select * from final
