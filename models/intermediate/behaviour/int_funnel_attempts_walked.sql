-- Funnel attempts of seeds/funnels.csv walked over the user actions, in two order modes, with
-- the position (user_event_number) of each reached step, so the paths after a drop-off can
-- start there. An attempt is funnel_conversions' (one per user, funnel and business day,
-- from the day's first step-1 event; steps within conversion_window_hours of it):
-- - ordered: step k = the first step-k event at or after step k-1 (funnel_conversions' rule;
--   a data test reconciles the counts);
-- - strict: step k = the very next user action after step k-1 (no other action between).
{%- set max_steps = var('funnel_max_steps') %}

with

funnels as (
    select * from {{ ref('funnels') }}
),

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

funnel_events as (
    select
        funnels.funnel_code,
        funnels.step_number,
        funnels.conversion_window_hours,
        session_events.user_id,
        session_events.event_at,
        session_events.event_date,
        session_events.user_event_number
    from session_events
    inner join funnels
        on session_events.event_name = funnels.event_name
),

-- Positions follow time (ties by event_id), so the first position is the first event.
step_1 as (
    select
        funnel_code,
        user_id,
        event_date as entry_date,
        min(event_at) as entered_at,
        max(conversion_window_hours) as conversion_window_hours,
        min(event_at) as reached_at,
        min(user_event_number) as reached_position
    from funnel_events
    where step_number = 1
    group by funnel_code, user_id, event_date
),

ordered_step_1 as (
    select * from step_1
),

strict_step_1 as (
    select * from step_1
),

{%- for step in range(2, max_steps + 1) %}

ordered_step_{{ step }} as (
    select
        previous_step.funnel_code,
        previous_step.user_id,
        previous_step.entry_date,
        previous_step.entered_at,
        previous_step.conversion_window_hours,
        min(funnel_events.event_at) as reached_at,
        min(funnel_events.user_event_number) as reached_position
    from ordered_step_{{ step - 1 }} as previous_step
    inner join funnel_events
        on previous_step.funnel_code = funnel_events.funnel_code
        and previous_step.user_id = funnel_events.user_id
        and funnel_events.step_number = {{ step }}
        and previous_step.reached_at <= funnel_events.event_at
        and funnel_events.event_at
            <= {{ dbt.dateadd('hour', 'previous_step.conversion_window_hours', 'previous_step.entered_at') }}
    group by
        previous_step.funnel_code, previous_step.user_id, previous_step.entry_date,
        previous_step.entered_at, previous_step.conversion_window_hours
),

strict_step_{{ step }} as (
    select
        previous_step.funnel_code,
        previous_step.user_id,
        previous_step.entry_date,
        previous_step.entered_at,
        previous_step.conversion_window_hours,
        funnel_events.event_at as reached_at,
        funnel_events.user_event_number as reached_position
    from strict_step_{{ step - 1 }} as previous_step
    inner join funnel_events
        on previous_step.funnel_code = funnel_events.funnel_code
        and previous_step.user_id = funnel_events.user_id
        and funnel_events.step_number = {{ step }}
        and funnel_events.user_event_number = previous_step.reached_position + 1
        and funnel_events.event_at
            <= {{ dbt.dateadd('hour', 'previous_step.conversion_window_hours', 'previous_step.entered_at') }}
),
{%- endfor %}

final as (
    {%- for mode in ['ordered', 'strict'] %}
    {%- for step in range(1, max_steps + 1) %}
    select
        '{{ mode }}' as order_mode,
        funnel_code,
        user_id,
        entry_date,
        {{ step }} as step_number,
        entered_at,
        conversion_window_hours,
        reached_at,
        reached_position
    from {{ mode }}_step_{{ step }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select * from final
