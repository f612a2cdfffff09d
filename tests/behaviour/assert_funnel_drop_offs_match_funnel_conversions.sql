-- The drop-offs of funnel_drop_off_paths (ordered mode) are funnel_conversions' own: per
-- funnel and step k below the last, dropped attempts = users of step k - users of step k + 1
-- summed over entry days. And in both modes the attempts of every path step add up to the
-- dropped attempts. A funnel step with drop-offs but no paths fails too. Compared: the
-- funnels the walk's ordered mode reproduces, those in ordered mode (seeds/funnel_settings.csv)
-- with no held property, exclusion or per-step window; the walk does not apply those.
with

funnel_conversions as (
    select * from {{ ref('funnel_conversions') }}
),

funnels as (
    select * from {{ ref('funnels') }}
),

funnel_settings as (
    select * from {{ ref('funnel_settings') }}
),

funnel_exclusions as (
    select * from {{ ref('funnel_exclusions') }}
),

plain_ordered_funnels as (
    select funnels.funnel_code
    from funnels
    left join funnel_settings
        on funnels.funnel_code = funnel_settings.funnel_code
    group by funnels.funnel_code
    having
        max(coalesce(funnel_settings.order_mode, 'ordered')) = 'ordered'
        and min(coalesce(funnel_settings.order_mode, 'ordered')) = 'ordered'
        and count(funnel_settings.hold_property) = 0
        and count(funnels.step_window_minutes) = 0
        and funnels.funnel_code not in (select funnel_exclusions.funnel_code from funnel_exclusions)
),

funnel_drop_off_paths as (
    select * from {{ ref('funnel_drop_off_paths') }}
),

step_users as (
    select
        funnel_code,
        step_number,
        sum(users) as users
    from funnel_conversions
    where funnel_code in (select plain_ordered_funnels.funnel_code from plain_ordered_funnels)
    group by funnel_code, step_number
),

expected as (
    select
        step_users.funnel_code,
        step_users.step_number as dropped_after_step,
        step_users.users - next_step.users as dropped_attempts
    from step_users
    inner join step_users as next_step
        on step_users.funnel_code = next_step.funnel_code
        and step_users.step_number + 1 = next_step.step_number
),

path_steps as (
    select
        order_mode,
        funnel_code,
        dropped_after_step,
        step_number,
        sum(attempts) as attempts,
        max(dropped_attempts) as dropped_attempts,
        min(dropped_attempts) as min_dropped_attempts
    from funnel_drop_off_paths
    group by order_mode, funnel_code, dropped_after_step, step_number
),

not_adding_up as (
    select
        order_mode,
        funnel_code,
        dropped_after_step,
        step_number,
        attempts,
        dropped_attempts,
        'path attempts do not add up to the dropped attempts' as failure_reason
    from path_steps
    where attempts <> dropped_attempts
        or dropped_attempts <> min_dropped_attempts
),

first_path_steps as (
    select * from path_steps
    where order_mode = 'ordered' and step_number = 1
),

not_matching as (
    select
        'ordered' as order_mode,
        expected.funnel_code,
        expected.dropped_after_step,
        1 as step_number,
        first_path_steps.attempts,
        expected.dropped_attempts,
        'dropped attempts differ from funnel_conversions' as failure_reason
    from expected
    left join first_path_steps
        on expected.funnel_code = first_path_steps.funnel_code
        and expected.dropped_after_step = first_path_steps.dropped_after_step
    where coalesce(first_path_steps.dropped_attempts, 0) <> expected.dropped_attempts
),

final as (
    select * from not_adding_up
    union all
    select * from not_matching
)

select * from final
