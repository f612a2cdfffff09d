-- Monthly repurchase (复购) by user group: overall, new vs returning buyers, the user
-- segments and the layers as of the month start. One row per (order_month, group_dimension,
-- group_value).
with

user_days as {{ inline_cte() }} (
    select * from {{ ref('int_user_days_aggregated') }}
),

user_segments as (
    select * from {{ ref('int_user_segments_unpivoted') }}
),

user_layers as (
    select * from {{ ref('user_layers') }}
),

layer_dates as (
    select * from {{ ref('int_layer_dates_mapped') }}
),

data_dates as (
    select max(activity_date) as latest_data_date
    from user_days
),

buyer_months as (
    select
        user_id,
        {{ period_start('month', 'activity_date') }} as order_month,
        sum(paid_order_count) as paid_orders,
        sum(paid_amount) as gmv
    from user_days
    where has_paid_order
    group by user_id, {{ period_start('month', 'activity_date') }}
),

first_buyer_months as (
    select user_id, min(order_month) as first_order_month
    from buyer_months
    group by user_id
),

buyer_layers as (
    -- Point in time: the layer on the latest as-of date before the month's first day.
    select
        buyer_months.user_id,
        buyer_months.order_month
        {{- layer_columns('user_layers') }}
    from buyer_months
    left join layer_dates
        on buyer_months.order_month = layer_dates.date_day
    left join user_layers
        on buyer_months.user_id = user_layers.user_id
        and layer_dates.layer_as_of_date = user_layers.as_of_date
),

layer_groups as (
    {{ unpivot_layers('buyer_layers', ['user_id', 'order_month']) }}
),

buyer_groups as (
    select
        buyer_months.user_id,
        buyer_months.order_month,
        user_segments.segment_dimension as group_dimension,
        user_segments.segment_value as group_value
    from buyer_months
    inner join user_segments
        on buyer_months.user_id = user_segments.user_id

    union all

    -- New buyers place their first paid order in the month; returning buyers paid before.
    select
        buyer_months.user_id,
        buyer_months.order_month,
        'buyer_type' as group_dimension,
        case
            when buyer_months.order_month = first_buyer_months.first_order_month then 'new'
            else 'returning'
        end as group_value
    from buyer_months
    inner join first_buyer_months
        on buyer_months.user_id = first_buyer_months.user_id

    union all

    select
        user_id,
        order_month,
        segment_dimension as group_dimension,
        segment_value as group_value
    from layer_groups
),

aggregated as (
    select
        buyer_groups.order_month,
        buyer_groups.group_dimension,
        buyer_groups.group_value,
        count(*) as buyers,
        count(case when buyer_months.paid_orders >= 2 then 1 end) as repeat_buyers,
        sum(buyer_months.paid_orders) as orders,
        sum(buyer_months.gmv) as gmv
    from buyer_groups
    inner join buyer_months
        on buyer_groups.user_id = buyer_months.user_id
        and buyer_groups.order_month = buyer_months.order_month
    group by buyer_groups.order_month, buyer_groups.group_dimension, buyer_groups.group_value
),

final as (
    select
        aggregated.order_month,
        aggregated.group_dimension,
        aggregated.group_value,
        cast(aggregated.buyers as bigint) as buyers,
        cast(aggregated.repeat_buyers as bigint) as repeat_buyers,
        {{ safe_ratio('aggregated.repeat_buyers', 'aggregated.buyers') }} as repurchase_rate,
        cast(aggregated.orders as bigint) as orders,
        cast(aggregated.gmv as double) as gmv,
        cast({{ dbt.dateadd('day', -1, add_periods('month', 1, 'aggregated.order_month')) }} as date)
            > data_dates.latest_data_date as is_provisional
    from aggregated
    cross join data_dates
)

select * from final
