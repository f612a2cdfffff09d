-- A path equal to a funnel's steps is the funnel run in strict order: per funnel and step k,
-- the strict attempts of int_funnel_attempts_walked (which funnel_drop_off_paths reads) equal
-- the attempts whose next k - 1 user actions are steps 2..k within the window, counted here
-- independently with lead() over each user's actions. When funnel_conversions gets a strict
-- order mode, compare that with these counts too.
{%- set max_steps = var('funnel_max_steps') %}

with

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

funnels as (
    select * from {{ ref('funnels') }}
),

attempts as (
    select * from {{ ref('int_funnel_attempts_walked') }}
),

followed as (
    select
        user_id,
        event_date,
        event_name,
        event_at,
        user_event_number
        {%- for offset in range(1, max_steps) %},
        lead(event_name, {{ offset }}) over (
            partition by user_id order by user_event_number
        ) as next_event_{{ offset }},
        lead(event_at, {{ offset }}) over (
            partition by user_id order by user_event_number
        ) as next_at_{{ offset }}
        {%- endfor %}
    from session_events
),

entries as (
    select
        funnels.funnel_code,
        funnels.conversion_window_hours,
        followed.*,
        row_number() over (
            partition by funnels.funnel_code, followed.user_id, followed.event_date
            order by followed.user_event_number
        ) as entry_rank
    from followed
    inner join funnels
        on followed.event_name = funnels.event_name
        and funnels.step_number = 1
),

expected as (
    {%- for step in range(1, max_steps + 1) %}
    select
        entries.funnel_code,
        {{ step }} as step_number,
        count(*) as attempts
    from entries
    {%- for offset in range(1, step) %}
    inner join funnels as step_{{ offset + 1 }}
        on entries.funnel_code = step_{{ offset + 1 }}.funnel_code
        and step_{{ offset + 1 }}.step_number = {{ offset + 1 }}
        and entries.next_event_{{ offset }} = step_{{ offset + 1 }}.event_name
        and entries.next_at_{{ offset }}
            <= {{ dbt.dateadd('hour', 'entries.conversion_window_hours', 'entries.event_at') }}
    {%- endfor %}
    where entries.entry_rank = 1
    group by entries.funnel_code
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

walked as (
    select
        funnel_code,
        step_number,
        count(*) as attempts
    from attempts
    where order_mode = 'strict'
    group by funnel_code, step_number
),

final as (
    select
        coalesce(expected.funnel_code, walked.funnel_code) as funnel_code,
        coalesce(expected.step_number, walked.step_number) as step_number,
        expected.attempts as expected_attempts,
        walked.attempts as walked_attempts
    from expected
    full outer join walked
        on expected.funnel_code = walked.funnel_code
        and expected.step_number = walked.step_number
    where coalesce(expected.attempts, 0) <> coalesce(walked.attempts, 0)
)

select * from final
