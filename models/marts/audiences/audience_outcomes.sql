-- One row per audience, audience date and outcome (conversion, repurchase, retention): treatment
-- vs holdout rates in the audience_outcome_days days after the audience date, absolute lift and
-- a normal-approximation confidence interval for the difference of two proportions (intent to
-- treat: every treatment member, sent or not), and the lift on the delivered users (treatment
-- members a receipt of the audience reached): the intent-to-treat lift divided by the delivered
-- share (the Bloom estimator; the holdout receives nothing, so this is the effect on the
-- treated).
{%- set days = var('audience_outcome_days') %}
{%- set match_days = var('delivery_receipt_match_days') %}
{%- set outcomes = {
    'conversion': 'paid_orders_after >= 1',
    'repurchase': 'paid_orders_after >= 2',
    'retention': 'active_days_after >= 1',
} %}
with

members as (
    select * from {{ ref('audience_members') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

receipts as (
    select * from {{ ref('stg_landing__deliveries') }}
),

delivered_members as (
    select distinct
        members.audience_id,
        members.audience_date,
        members.user_id
    from members
    inner join receipts
        on members.audience_id = receipts.audience_id
        and members.user_id = receipts.user_id
        and receipts.sent_date >= members.audience_date
        and receipts.sent_date
            <= cast({{ dbt.dateadd('day', match_days, 'members.audience_date') }} as date)
    where members.assignment_group = 'treatment'
        and receipts.is_delivered
),

latest as (
    select as_of_date as latest_data_date
    from as_of_dates
    where is_latest
),

follow_up as (
    select
        members.audience_id,
        members.audience_date,
        members.user_id,
        members.assignment_group,
        delivered_members.user_id is not null as is_delivered,
        cast(coalesce(sum(user_days.paid_order_count), 0) as bigint) as paid_orders_after,
        count(*) filter (where user_days.is_active) as active_days_after
    from members
    left join delivered_members
        on members.audience_id = delivered_members.audience_id
        and members.audience_date = delivered_members.audience_date
        and members.user_id = delivered_members.user_id
    left join user_days
        on members.user_id = user_days.user_id
        and user_days.activity_date > members.audience_date
        and {{ dbt.datediff('members.audience_date', 'user_days.activity_date', 'day') }} <= {{ days }}
    group by
        members.audience_id,
        members.audience_date,
        members.user_id,
        members.assignment_group,
        delivered_members.user_id is not null
),

member_outcomes as (
    {%- for outcome, condition in outcomes.items() %}
    select
        audience_id,
        audience_date,
        assignment_group,
        is_delivered,
        '{{ outcome }}' as outcome,
        case when {{ condition }} then 1 else 0 end as is_success
    from follow_up
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

counts as (
    select
        audience_id,
        audience_date,
        outcome,
        count(*) filter (where assignment_group = 'treatment') as treatment_users,
        cast(coalesce(sum(is_success) filter (where assignment_group = 'treatment'), 0) as bigint)
            as treatment_successes,
        count(*) filter (where assignment_group = 'holdout') as holdout_users,
        cast(coalesce(sum(is_success) filter (where assignment_group = 'holdout'), 0) as bigint)
            as holdout_successes,
        count(*) filter (where assignment_group = 'treatment' and is_delivered) as delivered_users,
        cast(coalesce(sum(is_success) filter (
            where assignment_group = 'treatment' and is_delivered
        ), 0) as bigint) as delivered_successes
    from member_outcomes
    group by audience_id, audience_date, outcome
),

rates as (
    select
        counts.*,
        cast(treatment_successes as double) / nullif(treatment_users, 0) as treatment_rate,
        cast(holdout_successes as double) / nullif(holdout_users, 0) as holdout_rate,
        cast(delivered_users as double) / nullif(treatment_users, 0) as delivered_share,
        cast(delivered_successes as double) / nullif(delivered_users, 0) as delivered_rate
    from counts
),

lifts as (
    select
        rates.*,
        treatment_rate - holdout_rate as absolute_lift,
        sqrt(
            treatment_rate * (1 - treatment_rate) / nullif(treatment_users, 0)
            + holdout_rate * (1 - holdout_rate) / nullif(holdout_users, 0)
        ) as lift_standard_error
    from rates
),

final as (
    select
        lifts.audience_id,
        lifts.audience_date,
        lifts.outcome,
        {{ days }} as outcome_window_days,
        cast({{ dbt.dateadd('day', days, 'lifts.audience_date') }} as date)
            <= latest.latest_data_date as is_window_complete,
        lifts.treatment_users,
        lifts.treatment_successes,
        lifts.treatment_rate,
        lifts.holdout_users,
        lifts.holdout_successes,
        lifts.holdout_rate,
        lifts.absolute_lift,
        lifts.lift_standard_error,
        lifts.absolute_lift - {{ var('audience_ci_z') }} * lifts.lift_standard_error
            as lift_ci_lower,
        lifts.absolute_lift + {{ var('audience_ci_z') }} * lifts.lift_standard_error
            as lift_ci_upper,
        lifts.delivered_users,
        lifts.delivered_successes,
        lifts.delivered_share,
        lifts.delivered_rate,
        lifts.absolute_lift / nullif(lifts.delivered_share, 0) as delivered_lift,
        (lifts.absolute_lift - {{ var('audience_ci_z') }} * lifts.lift_standard_error)
            / nullif(lifts.delivered_share, 0) as delivered_lift_ci_lower,
        (lifts.absolute_lift + {{ var('audience_ci_z') }} * lifts.lift_standard_error)
            / nullif(lifts.delivered_share, 0) as delivered_lift_ci_upper
    from lifts
    cross join latest
)

select * from final
