-- Stickiness distribution (粘性分布): per calendar week or month, how many users were active on
-- exactly 1, 2, ... days of it. Users of a period add up to the period's active users.
{%- set grains = var('stickiness_grains') %}

with

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

data_dates as (
    select min(activity_date) as first_data_date, max(activity_date) as latest_data_date
    from user_days
),

active_user_periods as (
    {%- for grain in grains %}
    select
        '{{ grain }}' as period_type,
        {{ period_start(grain, 'activity_date') }} as period_start_date,
        user_id,
        count(*) as active_days
    from user_days
    where is_active
    group by {{ period_start(grain, 'activity_date') }}, user_id
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

distribution as (
    select
        period_type,
        period_start_date,
        active_days,
        count(*) as users
    from active_user_periods
    group by period_type, period_start_date, active_days
),

period_totals as (
    select
        period_type,
        period_start_date,
        sum(users) as period_active_users
    from distribution
    group by period_type, period_start_date
),

final as (
    select
        distribution.period_type,
        distribution.period_start_date,
        cast(distribution.active_days as integer) as active_days,
        cast(distribution.users as bigint) as users,
        cast(period_totals.period_active_users as bigint) as period_active_users,
        cast(distribution.users as double) / period_totals.period_active_users as user_share,
        -- The period is not wholly in the data: it ends after the latest data date or starts
        -- before the first one, so its counts are of fewer days than the period has.
        (
            {%- for grain in grains %}
            (distribution.period_type = '{{ grain }}'
                and {{ dbt.dateadd('day', -1, add_periods(grain, 1, 'distribution.period_start_date')) }}
                > data_dates.latest_data_date)
            or
            {%- endfor %}
            distribution.period_start_date < data_dates.first_data_date
        ) as is_provisional
    from distribution
    inner join period_totals
        on distribution.period_type = period_totals.period_type
        and distribution.period_start_date = period_totals.period_start_date
    cross join data_dates
)

select * from final
