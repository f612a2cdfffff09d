-- The drop-offs of funnel_drop_off_paths are funnel_conversions' own, for every funnel in its
-- own order mode (held property, step windows; excluded attempts are in neither: both read
-- int_funnel_steps_reached without them): per funnel and step k below the last, dropped
-- attempts = users of step k - users of step k + 1 summed over entry days. And the attempts
-- of every path step add up to the dropped attempts. A funnel step with drop-offs but no
-- paths fails too, and so does a path row not in its funnel's own order_mode.
-- A check of funnel_drop_off_paths in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'funnel_drop_off_paths'}}}) }}
with

funnel_conversions as (
    select * from {{ ref('funnel_conversions') }}
),

funnel_settings as (
    select * from {{ ref('funnel_settings') }}
),

funnel_drop_off_paths as (
    select * from {{ ref('funnel_drop_off_paths') }}
),

step_users as (
    select
        funnel_code,
        step_number,
        sum(users) as reached_users
    from funnel_conversions
    group by funnel_code, step_number
),

expected as (
    select
        step_users.funnel_code,
        step_users.step_number as dropped_after_step,
        step_users.reached_users - next_step.reached_users as dropped_attempts
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
    where step_number = 1
),

not_matching as (
    select
        first_path_steps.order_mode,
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

wrong_modes as (
    select distinct
        funnel_drop_off_paths.order_mode,
        funnel_drop_off_paths.funnel_code,
        funnel_drop_off_paths.dropped_after_step,
        funnel_drop_off_paths.step_number,
        funnel_drop_off_paths.attempts,
        funnel_drop_off_paths.dropped_attempts,
        'order_mode differs from funnel_settings' as failure_reason
    from funnel_drop_off_paths
    left join funnel_settings
        on funnel_drop_off_paths.funnel_code = funnel_settings.funnel_code
    where funnel_drop_off_paths.order_mode <> coalesce(funnel_settings.order_mode, 'ordered')
),

final as (
    select * from not_adding_up
    union all
    select * from not_matching
    union all
    select * from wrong_modes
)

select * from final
