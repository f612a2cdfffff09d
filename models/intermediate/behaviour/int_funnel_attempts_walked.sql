-- The funnel engine's attempts (int_funnel_steps_reached: each funnel in its own order_mode of
-- seeds/funnel_settings.csv, with its held property, step windows and exclusions) with the
-- position (user_event_number) of each reached step's event in the user's action sequence, so
-- the path after a drop-off starts there. Excluded attempts are left out: funnel_conversions
-- does not count them, so they are not drop-offs.
--
-- The step's event is the user action at reached_at named as the step (ties in time: the
-- smallest user_event_number, the first in the engine's own order of event_at, event_id). In
-- `any` order step k is reached when the last of steps 2..k happened, so the action at
-- reached_at may be an earlier step's: then the first action at reached_at named as any of
-- steps 1..k is taken.

with

funnels as (
    select * from {{ ref('funnels') }}
),

funnel_settings as (
    select * from {{ ref('funnel_settings') }}
),

steps_reached as (
    select * from {{ ref('int_funnel_steps_reached') }}
),

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

counted_steps as (
    select
        steps_reached.funnel_code,
        coalesce(funnel_settings.order_mode, 'ordered') as order_mode,
        steps_reached.user_id,
        steps_reached.entry_date,
        steps_reached.step_number,
        steps_reached.entered_at,
        steps_reached.reached_at,
        steps_reached.window_ends_at
    from steps_reached
    left join funnel_settings
        on steps_reached.funnel_code = funnel_settings.funnel_code
    where not steps_reached.is_excluded
),

-- The step's own event first, then (any order only) the events of the steps before it.
candidate_events as (
    select
        counted_steps.funnel_code,
        counted_steps.order_mode,
        counted_steps.user_id,
        counted_steps.entry_date,
        counted_steps.step_number,
        session_events.user_event_number,
        row_number() over (
            partition by
                counted_steps.funnel_code, counted_steps.user_id, counted_steps.entry_date,
                counted_steps.step_number
            order by
                case when candidate_steps.step_number = counted_steps.step_number then 0 else 1 end,
                session_events.user_event_number
        ) as candidate_rank
    from counted_steps
    inner join funnels as candidate_steps
        on counted_steps.funnel_code = candidate_steps.funnel_code
        and (
            counted_steps.step_number = candidate_steps.step_number
            or (
                counted_steps.order_mode = 'any'
                and counted_steps.step_number > candidate_steps.step_number
            )
        )
    inner join session_events
        on counted_steps.user_id = session_events.user_id
        and counted_steps.reached_at = session_events.event_at
        and candidate_steps.event_name = session_events.event_name
),

-- Left join: a step without its action keeps a null position (a not_null test fails on it).
final as (
    select
        counted_steps.order_mode,
        counted_steps.funnel_code,
        counted_steps.user_id,
        counted_steps.entry_date,
        counted_steps.step_number,
        counted_steps.entered_at,
        counted_steps.window_ends_at,
        counted_steps.reached_at,
        candidate_events.user_event_number as reached_position
    from counted_steps
    left join candidate_events
        on counted_steps.funnel_code = candidate_events.funnel_code
        and counted_steps.user_id = candidate_events.user_id
        and counted_steps.entry_date = candidate_events.entry_date
        and counted_steps.step_number = candidate_events.step_number
        and candidate_events.candidate_rank = 1
)

select * from final
