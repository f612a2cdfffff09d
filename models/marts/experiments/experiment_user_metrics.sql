-- One row per experiment, user and metric: the user's value after the first exposure and in
-- the same-length window before it (the CUPED covariate). The engine (userops/experiments.py)
-- turns these rows into ops.experiment_results.
-- A/B tests (stg_landing__experiment_exposures): orders count from the exposure time on, over
-- the business days exposed_date ... exposed_date + W - 1 (W = outcome_window_days); the pre
-- value counts the orders before the exposure time on exposed_date - W ... exposed_date.
-- Retention counts active days exposed_date + 1 ... + W (pre: exposed_date - W ... - 1).
-- Audiences (audience_members): the audience date is the exposure; post = days D + 1 ... D + W
-- as in audience_outcomes, pre = days D - W + 1 ... D.
{%- set audience_pre = "user_days.activity_date <= subjects.exposed_date and user_days.activity_date > cast("
    ~ dbt.dateadd('day', '-subjects.outcome_window_days', 'subjects.exposed_date') ~ " as date)" %}
{%- set metrics = {
    'conversion': ('case when {p}_paid_orders >= 1 then 1 else 0 end'),
    'repurchase': ('case when {p}_paid_orders >= 2 then 1 else 0 end'),
    'gmv_per_user': ('{p}_paid_amount'),
    'retention': ('case when {p}_active_days >= 1 then 1 else 0 end'),
} %}
with

exposures as (
    select * from {{ ref('stg_landing__experiment_exposures') }}
),

arms as (
    select * from {{ ref('experiment_arms') }}
),

members as (
    select * from {{ ref('audience_members') }}
),

orders as (
    select * from {{ ref('stg_landing__orders') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

latest as (
    select as_of_date as latest_data_date
    from as_of_dates
    where is_latest
),

subjects as (
    select
        exposures.experiment_id,
        arms.experiment_kind,
        exposures.user_id,
        exposures.variant,
        exposures.exposed_at,
        exposures.exposed_date,
        arms.outcome_window_days
    from exposures
    inner join arms
        on exposures.experiment_id = arms.experiment_id
        and exposures.variant = arms.variant

    union all

    select
        arms.experiment_id,
        arms.experiment_kind,
        members.user_id,
        members.assignment_group as variant,
        cast(null as timestamp) as exposed_at,
        members.audience_date as exposed_date,
        arms.outcome_window_days
    from members
    inner join arms
        on members.audience_id || ':' || cast(members.audience_date as {{ dbt.type_string() }})
            = arms.experiment_id
        and members.assignment_group = arms.variant
),

-- A/B tests: orders by time around the exposure.
ab_orders as (
    select
        subjects.experiment_id,
        subjects.user_id,
        count(case when orders.ordered_at >= subjects.exposed_at then 1 end) as post_paid_orders,
        coalesce(sum(case when orders.ordered_at >= subjects.exposed_at then orders.amount end), 0)
            as post_paid_amount,
        count(case when orders.ordered_at < subjects.exposed_at then 1 end) as pre_paid_orders,
        coalesce(sum(case when orders.ordered_at < subjects.exposed_at then orders.amount end), 0)
            as pre_paid_amount
    from subjects
    inner join orders
        on subjects.user_id = orders.user_id
        and orders.is_paid
        and orders.order_date >= cast({{ dbt.dateadd('day', '-subjects.outcome_window_days', 'subjects.exposed_date') }} as date)
        and orders.order_date < cast({{ dbt.dateadd('day', 'subjects.outcome_window_days', 'subjects.exposed_date') }} as date)
    where subjects.experiment_kind = 'ab_test'
    group by subjects.experiment_id, subjects.user_id
),

-- Audiences: paid orders and amounts by day; both kinds: active days by day.
day_facts as (
    select
        subjects.experiment_id,
        subjects.user_id,
        count(case when user_days.is_active and user_days.activity_date > subjects.exposed_date then 1 end)
            as post_active_days,
        count(case when user_days.is_active and user_days.activity_date < subjects.exposed_date then 1 end)
            as pre_active_days,
        coalesce(sum(case when user_days.activity_date > subjects.exposed_date then user_days.paid_order_count end), 0)
            as post_day_paid_orders,
        coalesce(sum(case when user_days.activity_date > subjects.exposed_date then user_days.paid_amount end), 0)
            as post_day_paid_amount,
        -- Audience pre window: D - W + 1 ... D (the audience day itself is before any send).
        coalesce(sum(case when {{ audience_pre }} then user_days.paid_order_count end), 0)
            as pre_day_paid_orders,
        coalesce(sum(case when {{ audience_pre }} then user_days.paid_amount end), 0)
            as pre_day_paid_amount,
        count(case when user_days.is_active and {{ audience_pre }} then 1 end)
            as pre_day_active_days
    from subjects
    inner join user_days
        on subjects.user_id = user_days.user_id
        and user_days.activity_date > cast({{ dbt.dateadd('day', '-subjects.outcome_window_days - 1', 'subjects.exposed_date') }} as date)
        and user_days.activity_date <= cast({{ dbt.dateadd('day', 'subjects.outcome_window_days', 'subjects.exposed_date') }} as date)
    group by subjects.experiment_id, subjects.user_id
),

user_values as (
    select
        subjects.experiment_id,
        subjects.experiment_kind,
        subjects.user_id,
        subjects.variant,
        subjects.exposed_date,
        cast({{ dbt.dateadd('day', 'subjects.outcome_window_days', 'subjects.exposed_date') }} as date)
            <= latest.latest_data_date as is_window_complete,
        case when subjects.experiment_kind = 'ab_test' then coalesce(ab_orders.post_paid_orders, 0)
            else coalesce(day_facts.post_day_paid_orders, 0) end as post_paid_orders,
        case when subjects.experiment_kind = 'ab_test' then coalesce(ab_orders.post_paid_amount, 0)
            else coalesce(day_facts.post_day_paid_amount, 0) end as post_paid_amount,
        case when subjects.experiment_kind = 'ab_test' then coalesce(ab_orders.pre_paid_orders, 0)
            else coalesce(day_facts.pre_day_paid_orders, 0) end as pre_paid_orders,
        case when subjects.experiment_kind = 'ab_test' then coalesce(ab_orders.pre_paid_amount, 0)
            else coalesce(day_facts.pre_day_paid_amount, 0) end as pre_paid_amount,
        coalesce(day_facts.post_active_days, 0) as post_active_days,
        case when subjects.experiment_kind = 'ab_test' then coalesce(day_facts.pre_active_days, 0)
            else coalesce(day_facts.pre_day_active_days, 0) end as pre_active_days
    from subjects
    cross join latest
    left join ab_orders
        on subjects.experiment_id = ab_orders.experiment_id
        and subjects.user_id = ab_orders.user_id
    left join day_facts
        on subjects.experiment_id = day_facts.experiment_id
        and subjects.user_id = day_facts.user_id
),

unpivoted as (
    {%- for metric_code, expression in metrics.items() %}
    select
        experiment_id,
        experiment_kind,
        user_id,
        variant,
        exposed_date,
        is_window_complete,
        '{{ metric_code }}' as metric_code,
        cast({{ expression | replace('{p}', 'pre') }} as double) as pre_value,
        cast({{ expression | replace('{p}', 'post') }} as double) as post_value
    from user_values
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

final as (
    select * from unpivoted
)

select * from final
