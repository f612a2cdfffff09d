-- Payback per acquisition cohort and channel (回本周期): CAC = marketing spend of the channel
-- in the cohort period / users the channel acquired in it; the payback period is the first
-- period whose cumulative GMV per cohort user is at least the CAC. One row per cohort grain,
-- cohort start and channel ('all' = blended CAC over every channel).
{%- set grains = var('value_cohort_grains') %}

with

value_cohorts as (
    select * from {{ ref('value_cohorts') }}
),

marketing_spend as (
    select * from {{ ref('stg_landing__marketing_spend') }}
),

spend_periods as (
    {%- for grain in grains %}
    select
        '{{ grain }}' as cohort_grain,
        {{ period_start(grain, 'spend_date') }} as cohort_start_date,
        coalesce(channel, 'unknown') as acquisition_channel,
        cast(spend as decimal(38, 2)) as spend
    from marketing_spend
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

channel_spend as (
    select cohort_grain, cohort_start_date, acquisition_channel, sum(spend) as marketing_spend
    from spend_periods
    group by cohort_grain, cohort_start_date, acquisition_channel

    union all

    select cohort_grain, cohort_start_date, 'all' as acquisition_channel, sum(spend) as marketing_spend
    from spend_periods
    group by cohort_grain, cohort_start_date
),

cohort_summaries as (
    select
        cohort_grain,
        cohort_start_date,
        acquisition_channel,
        max(cohort_users) as cohort_users,
        max(period_number) as latest_period_number,
        max(case when is_provisional then 1 else 0 end) = 1 as has_open_period
    from value_cohorts
    group by cohort_grain, cohort_start_date, acquisition_channel
),

latest_cells as (
    select
        value_cohorts.cohort_grain,
        value_cohorts.cohort_start_date,
        value_cohorts.acquisition_channel,
        value_cohorts.cumulative_gmv_per_user
    from value_cohorts
    inner join cohort_summaries
        on value_cohorts.cohort_grain = cohort_summaries.cohort_grain
        and value_cohorts.cohort_start_date = cohort_summaries.cohort_start_date
        and value_cohorts.acquisition_channel = cohort_summaries.acquisition_channel
        and value_cohorts.period_number = cohort_summaries.latest_period_number
),

-- Spend without acquired users still appears (CAC undefined), so all spend is accounted for.
cohort_keys as (
    select cohort_grain, cohort_start_date, acquisition_channel from cohort_summaries

    union

    select cohort_grain, cohort_start_date, acquisition_channel from channel_spend
),

with_cac as (
    select
        cohort_keys.cohort_grain,
        cohort_keys.cohort_start_date,
        cohort_keys.acquisition_channel,
        coalesce(cohort_summaries.cohort_users, 0) as cohort_users,
        coalesce(channel_spend.marketing_spend, cast(0 as decimal(38, 2))) as marketing_spend,
        channel_spend.marketing_spend is not null as has_spend,
        cohort_summaries.latest_period_number,
        coalesce(cohort_summaries.has_open_period, false) as has_open_period,
        latest_cells.cumulative_gmv_per_user as latest_cumulative_gmv_per_user
    from cohort_keys
    left join cohort_summaries
        on cohort_keys.cohort_grain = cohort_summaries.cohort_grain
        and cohort_keys.cohort_start_date = cohort_summaries.cohort_start_date
        and cohort_keys.acquisition_channel = cohort_summaries.acquisition_channel
    left join channel_spend
        on cohort_keys.cohort_grain = channel_spend.cohort_grain
        and cohort_keys.cohort_start_date = channel_spend.cohort_start_date
        and cohort_keys.acquisition_channel = channel_spend.acquisition_channel
    left join latest_cells
        on cohort_keys.cohort_grain = latest_cells.cohort_grain
        and cohort_keys.cohort_start_date = latest_cells.cohort_start_date
        and cohort_keys.acquisition_channel = latest_cells.acquisition_channel
),

cac as (
    select
        with_cac.*,
        -- No spend recorded (organic, or a log without marketing_spend): CAC unknown, not 0.
        case
            when with_cac.cohort_users > 0 and with_cac.has_spend
                then cast(with_cac.marketing_spend as double) / with_cac.cohort_users
        end as cac
    from with_cac
),

paybacks as (
    select
        cac.cohort_grain,
        cac.cohort_start_date,
        cac.acquisition_channel,
        min(value_cohorts.period_number) as payback_period_number
    from cac
    inner join value_cohorts
        on cac.cohort_grain = value_cohorts.cohort_grain
        and cac.cohort_start_date = value_cohorts.cohort_start_date
        and cac.acquisition_channel = value_cohorts.acquisition_channel
        and cac.cac <= value_cohorts.cumulative_gmv_per_user
    group by cac.cohort_grain, cac.cohort_start_date, cac.acquisition_channel
),

final as (
    select
        cac.cohort_grain,
        cac.cohort_start_date,
        cac.acquisition_channel,
        cast(cac.cohort_users as bigint) as cohort_users,
        cast(cac.marketing_spend as double) as marketing_spend,
        cac.cac,
        cast(cac.latest_period_number as integer) as latest_period_number,
        cac.latest_cumulative_gmv_per_user,
        cast(paybacks.payback_period_number as integer) as payback_period_number,
        paybacks.payback_period_number is not null as is_payback_reached,
        -- Not paid back yet while a period is still open: the answer can still change.
        paybacks.payback_period_number is null and cac.has_open_period as is_provisional
    from cac
    left join paybacks
        on cac.cohort_grain = paybacks.cohort_grain
        and cac.cohort_start_date = paybacks.cohort_start_date
        and cac.acquisition_channel = paybacks.acquisition_channel
)

select * from final
