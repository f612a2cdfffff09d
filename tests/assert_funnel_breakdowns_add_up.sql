-- Every counted attempt has exactly one value under first_touch, last_touch and user
-- attribution, so a breakdown's users summed over values equal funnel_conversions.users for
-- every funnel, entry day and step. Per-step values are not one cohort and are not checked.
-- A check of funnel_step_breakdowns in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'funnel_step_breakdowns'}}}) }}
with

funnel_conversions as (
    select * from {{ ref('funnel_conversions') }}
),

funnel_step_breakdowns as (
    select * from {{ ref('funnel_step_breakdowns') }}
),

sums as (
    select
        funnel_code,
        entry_date,
        step_number,
        sum(users) as breakdown_users
    from funnel_step_breakdowns
    where attribution <> 'per_step'
    group by funnel_code, entry_date, step_number
),

final as (
    select
        sums.funnel_code,
        sums.entry_date,
        sums.step_number,
        sums.breakdown_users,
        funnel_conversions.users,
        'breakdown users do not add up to funnel_conversions.users' as failure_reason
    from sums
    left join funnel_conversions
        on sums.funnel_code = funnel_conversions.funnel_code
        and sums.entry_date = funnel_conversions.entry_date
        and sums.step_number = funnel_conversions.step_number
    where funnel_conversions.users is null
        or sums.breakdown_users <> funnel_conversions.users
)

select * from final
