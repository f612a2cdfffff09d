-- Value cohorts (价值同期群 / LTV curves): one row per cohort grain, acquisition cohort (signup
-- period), acquisition channel ('all' = every channel) and period number. Revenue is the paid
-- amount of the cohort's users in each calendar period after the signup period (period 0);
-- every period that has started by the latest data date is tracked, so the cohort revenue adds
-- up to the users' paid GMV (tested).
{%- set grains = var('value_cohort_grains') %}

with

users as (
    select * from {{ ref('users') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

time_spine as (
    select * from {{ ref('time_spine_daily') }}
),

data_dates as (
    -- The latest data date closes periods; never the wall clock (imported logs are historical).
    select max(activity_date) as latest_data_date
    from user_days
),

members as (
    {%- for grain in grains %}
    select
        user_id,
        '{{ grain }}' as cohort_grain,
        {{ period_start(grain, 'signup_date') }} as cohort_start_date,
        coalesce(acquisition_channel, 'unknown') as acquisition_channel
    from users
    where signup_date is not null
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

member_channels as (
    select user_id, cohort_grain, cohort_start_date, acquisition_channel
    from members

    union all

    select user_id, cohort_grain, cohort_start_date, 'all' as acquisition_channel
    from members
),

cohorts as (
    select
        cohort_grain,
        cohort_start_date,
        acquisition_channel,
        count(*) as cohort_users
    from member_channels
    group by cohort_grain, cohort_start_date, acquisition_channel
),

paid_days as (
    select
        user_id,
        activity_date,
        paid_order_count,
        cast(paid_amount as decimal(38, 2)) as paid_amount
    from user_days
    where has_paid_order
),

member_paid_days as (
    {%- for grain in grains %}
    select
        member_channels.cohort_grain,
        member_channels.cohort_start_date,
        member_channels.acquisition_channel,
        member_channels.user_id,
        -- A paid order before the signup period (possible in imported logs) counts in period 0,
        -- so no revenue is dropped.
        {%- set paid_period = period_start(grain, 'paid_days.activity_date') %}
        case
            when paid_days.activity_date < member_channels.cohort_start_date then 0
            else {{ periods_between(grain, 'member_channels.cohort_start_date', paid_period) }}
        end as period_number,
        paid_days.paid_order_count,
        paid_days.paid_amount
    from member_channels
    inner join paid_days
        on member_channels.user_id = paid_days.user_id
    where member_channels.cohort_grain = '{{ grain }}'
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

period_revenue as (
    select
        cohort_grain,
        cohort_start_date,
        acquisition_channel,
        period_number,
        count(distinct user_id) as paying_users,
        sum(paid_order_count) as paid_orders,
        sum(paid_amount) as period_gmv
    from member_paid_days
    group by cohort_grain, cohort_start_date, acquisition_channel, period_number
),

period_starts as (
    {%- for grain in grains %}
    select distinct
        '{{ grain }}' as cohort_grain,
        {{ period_start(grain, 'time_spine.date_day') }} as period_start_date
    from time_spine
    cross join data_dates
    where time_spine.date_day <= data_dates.latest_data_date
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

cells as (
    -- Every period from the cohort's own up to the one holding the latest data date.
    {%- for grain in grains %}
    select
        cohorts.cohort_grain,
        cohorts.cohort_start_date,
        cohorts.acquisition_channel,
        cohorts.cohort_users,
        {{ periods_between(grain, 'cohorts.cohort_start_date', 'period_starts.period_start_date') }}
            as period_number,
        period_starts.period_start_date,
        cast({{ dbt.dateadd('day', -1, add_periods(grain, 1, 'period_starts.period_start_date')) }} as date)
            as period_end_date
    from cohorts
    inner join period_starts
        on cohorts.cohort_grain = period_starts.cohort_grain
        and cohorts.cohort_start_date <= period_starts.period_start_date
    where cohorts.cohort_grain = '{{ grain }}'
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

cell_revenue as (
    select
        cells.*,
        coalesce(period_revenue.paying_users, 0) as paying_users,
        coalesce(period_revenue.paid_orders, 0) as paid_orders,
        coalesce(period_revenue.period_gmv, cast(0 as decimal(38, 2))) as period_gmv
    from cells
    left join period_revenue
        on cells.cohort_grain = period_revenue.cohort_grain
        and cells.cohort_start_date = period_revenue.cohort_start_date
        and cells.acquisition_channel = period_revenue.acquisition_channel
        and cells.period_number = period_revenue.period_number
),

cumulative as (
    select
        cell_revenue.*,
        sum(cell_revenue.period_gmv) over (
            partition by cell_revenue.cohort_grain, cell_revenue.cohort_start_date, cell_revenue.acquisition_channel
            order by cell_revenue.period_number
            rows between unbounded preceding and current row
        ) as cumulative_gmv
    from cell_revenue
),

final as (
    select
        cumulative.cohort_grain,
        cumulative.cohort_start_date,
        cumulative.acquisition_channel,
        cumulative.period_number,
        cumulative.period_start_date,
        cumulative.period_end_date,
        cast(cumulative.cohort_users as bigint) as cohort_users,
        cast(cumulative.paying_users as bigint) as paying_users,
        cast(cumulative.paid_orders as bigint) as paid_orders,
        cast(cumulative.period_gmv as double) as period_gmv,
        cast(cumulative.cumulative_gmv as double) as cumulative_gmv,
        cast(cumulative.period_gmv as double) / cumulative.cohort_users as gmv_per_user,
        cast(cumulative.cumulative_gmv as double) / cumulative.cohort_users
            as cumulative_gmv_per_user,
        cumulative.period_end_date > data_dates.latest_data_date as is_provisional
    from cumulative
    cross join data_dates
)

select * from final
