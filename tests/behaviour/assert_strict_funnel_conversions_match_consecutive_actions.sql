-- A path equal to a funnel's steps is the funnel run in strict order: for every strict funnel
-- (seeds/funnel_settings.csv), funnel_conversions users of step k summed over entry days equal
-- the attempts counted here independently from each user's action sequence with lead()
-- (active events ordered by event_at, event_id) whose next k - 1 actions after a step-1 event
-- are exactly steps 2..k. An attempt is funnel_conversions' (the user's first step-1 event of
-- a business day; docs/funnels.md): a chain may start at that event or any later step-1 event
-- within the conversion window, every step must lie within the window and within its
-- step_window_minutes of the step before; the attempt reaches step k when any chain does.
-- Exclusions are not re-derived: attempts int_funnel_steps_reached flags is_excluded are left
-- out of the count (its unit tests prove exclusions). Strict funnels with a hold_property are
-- not compared (the held-value split is not re-derived here).
-- A check of funnel_conversions in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'funnel_conversions'}}}) }}
{%- set max_steps = var('funnel_max_steps') %}

with

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

funnels as (
    select * from {{ ref('funnels') }}
),

funnel_settings as (
    select * from {{ ref('funnel_settings') }}
),

funnel_conversions as (
    select * from {{ ref('funnel_conversions') }}
),

steps_reached as (
    select * from {{ ref('int_funnel_steps_reached') }}
),

-- One row per strict funnel, its steps as columns.
strict_funnels as (
    select
        funnels.funnel_code,
        max(funnels.conversion_window_hours) as conversion_window_hours
        {%- for step in range(1, max_steps + 1) %},
        max(case when funnels.step_number = {{ step }} then funnels.event_name end)
            as step_{{ step }}_event,
        max(case when funnels.step_number = {{ step }} then funnels.step_window_minutes end)
            as step_{{ step }}_window_minutes
        {%- endfor %}
    from funnels
    inner join funnel_settings
        on funnels.funnel_code = funnel_settings.funnel_code
    where funnel_settings.order_mode = 'strict'
        and funnel_settings.hold_property is null
    group by funnels.funnel_code
),

followed as (
    select
        user_id,
        event_id,
        event_name,
        event_at,
        event_date
        {%- for offset in range(1, max_steps) %},
        lead(event_name, {{ offset }}) over (
            partition by user_id order by event_at, event_id
        ) as next_event_{{ offset }},
        lead(event_at, {{ offset }}) over (
            partition by user_id order by event_at, event_id
        ) as next_at_{{ offset }}
        {%- endfor %}
    from session_events
),

step_1_events as (
    select
        strict_funnels.*,
        followed.user_id,
        followed.event_id,
        followed.event_at,
        followed.event_date
        {%- for offset in range(1, max_steps) %},
        followed.next_event_{{ offset }},
        followed.next_at_{{ offset }}
        {%- endfor %}
    from followed
    inner join strict_funnels
        on followed.event_name = strict_funnels.step_1_event
),

entries as (
    select
        funnel_code,
        user_id,
        event_date as entry_date,
        event_id as entry_event_id,
        event_at as entered_at,
        {{ dbt.dateadd('hour', 'conversion_window_hours', 'event_at') }} as window_ends_at,
        row_number() over (
            partition by funnel_code, user_id, event_date
            order by event_at, event_id
        ) as entry_rank
    from step_1_events
),

-- Every step-1 event from the entry to the window's end starts a chain; steps_reached = the
-- steps its next actions match in a row.
chains as (
    select
        entries.funnel_code,
        entries.user_id,
        entries.entry_date,
        case
            {%- for step in range(2, max_steps + 1) %}
            {%- set previous_at = 'chain_starts.event_at' if step == 2 else 'chain_starts.next_at_' ~ (step - 2) %}
            when not coalesce(
                chain_starts.next_event_{{ step - 1 }} = chain_starts.step_{{ step }}_event
                and chain_starts.next_at_{{ step - 1 }} <= entries.window_ends_at
                and (
                    chain_starts.step_{{ step }}_window_minutes is null
                    or chain_starts.next_at_{{ step - 1 }}
                    <= {{ dbt.dateadd('minute', 'chain_starts.step_' ~ step ~ '_window_minutes', previous_at) }}
                ),
                false
            ) then {{ step - 1 }}
            {%- endfor %}
            else {{ max_steps }}
        end as steps_reached
    from entries
    inner join step_1_events as chain_starts
        on entries.funnel_code = chain_starts.funnel_code
        and entries.user_id = chain_starts.user_id
        and (
            entries.entered_at < chain_starts.event_at
            or (
                entries.entered_at = chain_starts.event_at
                and entries.entry_event_id <= chain_starts.event_id
            )
        )
        and entries.window_ends_at >= chain_starts.event_at
    where entries.entry_rank = 1
),

excluded_attempts as (
    select
        funnel_code,
        user_id,
        entry_date
    from steps_reached
    where step_number = 1 and is_excluded
),

attempts as (
    select
        chains.funnel_code,
        chains.user_id,
        chains.entry_date,
        max(chains.steps_reached) as steps_reached
    from chains
    left join excluded_attempts
        on chains.funnel_code = excluded_attempts.funnel_code
        and chains.user_id = excluded_attempts.user_id
        and chains.entry_date = excluded_attempts.entry_date
    where excluded_attempts.user_id is null
    group by chains.funnel_code, chains.user_id, chains.entry_date
),

expected as (
    select
        funnels.funnel_code,
        funnels.step_number,
        count(*) as step_users
    from attempts
    inner join funnels
        on attempts.funnel_code = funnels.funnel_code
        and attempts.steps_reached >= funnels.step_number
    group by funnels.funnel_code, funnels.step_number
),

converted as (
    select
        funnel_conversions.funnel_code,
        funnel_conversions.step_number,
        sum(funnel_conversions.users) as step_users
    from funnel_conversions
    inner join strict_funnels
        on funnel_conversions.funnel_code = strict_funnels.funnel_code
    group by funnel_conversions.funnel_code, funnel_conversions.step_number
),

final as (
    select
        coalesce(expected.funnel_code, converted.funnel_code) as funnel_code,
        coalesce(expected.step_number, converted.step_number) as step_number,
        expected.step_users as expected_users,
        converted.step_users as funnel_conversions_users
    from expected
    full outer join converted
        on expected.funnel_code = converted.funnel_code
        and expected.step_number = converted.step_number
    where coalesce(expected.step_users, 0) <> coalesce(converted.step_users, 0)
)

select * from final
