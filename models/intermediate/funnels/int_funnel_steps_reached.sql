-- Funnel attempts and the steps they reached (seeds funnels, funnel_settings, funnel_exclusions;
-- docs/funnels.md). One row per funnel, user, entry day and reached step.
--
-- An attempt starts at a user's first step-1 event of a business day. With a hold_property it
-- splits into one sub-attempt per value of that property (each starting at the day's first
-- step-1 event with the value, all later steps carrying the same value); the attempt reaches a
-- step when any sub-attempt does, at the earliest such time. A strict funnel follows a chain of
-- consecutive events from every step-1 event in the window, so chains are the unit the step
-- CTEs carry: one per sub-attempt in ordered and any mode, one per step-1 event in strict mode.
-- Incremental by entry day like funnel_conversions (macros/metrics/funnels.sql).
{%- set max_steps = var('funnel_max_steps') %}
{%- set first_entry_date = funnel_first_entry_date() %}
{#- Most business days before its own an event's attempts can have entered: a window of
    var funnel_max_conversion_window_hours (a seed test: no funnel's is longer) reaches
    ceil(hours / 24) days after the entry day, one more across a daylight-saving day. -#}
{%- set max_window_days = (var('funnel_max_conversion_window_hours') / 24) | round(0, 'ceil') | int + 1 %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[funnel_entry_delete_hook()],
    )
}}

with

funnels as (
    select * from {{ ref('funnels') }}
),

funnel_settings as (
    select * from {{ ref('funnel_settings') }}
),

funnel_exclusions as (
    select * from {{ ref('funnel_exclusions') }}
),

-- Read twice (sequence, exclusions): inlined, so DuckDB does not store a copy of every event.
events as {{ inline_cte() }} (
    select * from {{ ref('stg_landing__events') }}
    where event_name is not null
    {%- if first_entry_date is not none %}
        and event_date >= cast('{{ first_entry_date }}' as date)
    {%- endif %}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

data_dates as (
    -- The end of the latest data date, business time.
    select cast({{ dbt.dateadd('day', 1, 'max(activity_date)') }} as timestamp) as data_ends_at
    from user_days
),

-- Strict order needs each user's events in order: "no other event in between" counts the
-- user's own actions (is_active_event), so server-side push deliveries do not break a chain.
sequenced_events as (
    select
        user_id,
        event_id,
        event_name,
        event_at,
        event_date,
        platform,
        page,
        properties,
        row_number() over (partition by user_id order by event_at, event_id) as event_seq,
        lead(event_name) over (partition by user_id order by event_at, event_id) as next_event_name
    from events
    where is_active_event
),

second_steps as (
    select
        funnel_code,
        event_name
    from funnels
    where step_number = 2
),

steps as (
    select
        funnels.funnel_code,
        funnels.step_number,
        funnels.event_name,
        funnels.conversion_window_hours,
        funnels.step_window_minutes,
        coalesce(funnel_settings.order_mode, 'ordered') as order_mode,
        funnel_settings.hold_property,
        funnel_settings.breakdown_property,
        second_steps.event_name as step_2_event_name
    from funnels
    left join funnel_settings
        on funnels.funnel_code = funnel_settings.funnel_code
    left join second_steps
        on funnels.funnel_code = second_steps.funnel_code
),

step_events as (
    select
        steps.funnel_code,
        steps.step_number,
        steps.conversion_window_hours,
        steps.step_window_minutes,
        steps.order_mode,
        sequenced_events.user_id,
        sequenced_events.event_at,
        sequenced_events.event_date,
        sequenced_events.event_seq,
        -- Whether the user's next own event is the funnel's step-2 event: a strict chain can
        -- reach step 2 only then.
        coalesce(sequenced_events.next_event_name = steps.step_2_event_name, false)
            as is_followed_by_step_2,
        -- '-' stands for "no property held": one sub-attempt per attempt.
        case
            when steps.hold_property is null then '-'
            else {{ funnel_event_property('steps.hold_property', 'sequenced_events') }}
        end as held_value,
        {{ funnel_event_property('steps.breakdown_property', 'sequenced_events') }} as breakdown_value
    from sequenced_events
    inner join steps
        on sequenced_events.event_name = steps.event_name
),

held_step_events as (
    select * from step_events
    where held_value is not null
),

-- Every day_offset 0 .. window_days for window_days 0 .. max_window_days, built portably
-- (generate_series and list literals are not on Spark): step_events_by_entry_date joins on
-- window_days with an equality (a hash join; a range condition on day_offset made DuckDB sort
-- every step event in a piecewise merge join).
day_offsets as (
    {%- for window_days in range(max_window_days + 1) %}
    {%- set outer_loop = loop %}
    {%- for day_offset in range(window_days + 1) %}
    select
        {{ window_days }} as window_days,
        {{ day_offset }} as day_offset
    {%- if not (outer_loop.last and loop.last) %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- endfor %}
),

-- Every step-2+ event once per entry day whose attempts can reach it: from the business day of
-- the event's time less the conversion window (the earliest entry it can be within the window
-- of) to its own day. The step joins match a chain to these on its entry_date, an equality that
-- bounds each chain to the events its window can reach; on (funnel, user, held value, step)
-- alone they paired every chain of a user's history with every step event of that history.
{%- set earliest_entry_date = to_business_date(
    dbt.dateadd('hour', '-held_step_events.conversion_window_hours', 'held_step_events.event_at')
) %}
step_events_by_entry_date as (
    select
        held_step_events.funnel_code,
        held_step_events.step_number,
        held_step_events.step_window_minutes,
        held_step_events.user_id,
        held_step_events.held_value,
        held_step_events.event_at,
        held_step_events.event_seq,
        held_step_events.breakdown_value,
        cast({{ dbt.dateadd('day', '-day_offsets.day_offset', 'held_step_events.event_date') }} as date)
            as entry_date
    from held_step_events
    inner join day_offsets
        on day_offsets.window_days = least(
            {{ dbt.datediff(earliest_entry_date, 'held_step_events.event_date', 'day') }},
            {{ max_window_days }}
        )
    where held_step_events.step_number > 1
),

entry_events as (
    select
        funnel_code,
        user_id,
        event_date as entry_date,
        held_value,
        order_mode,
        event_at as entered_at,
        event_seq as entry_seq,
        breakdown_value,
        {{ dbt.dateadd('hour', 'conversion_window_hours', 'event_at') }} as window_ends_at,
        row_number() over (
            partition by funnel_code, user_id, event_date, held_value
            order by event_at, event_seq
        ) as entry_rank
    from held_step_events
    where step_number = 1
),

-- Step 1 of every chain: the sub-attempt's entry event, and in strict mode also every later
-- step-1 event within its window that the user's next own event could take to step 2 (a later
-- chain that stops at step 1 never counts: its sub-attempt's entry chain reached step 1 no
-- later and ranks first; on the demo data 19,792 of 405,380 later strict chains are left).
-- Each chain row carries the time and breakdown value of every step so far (reached_at_<k>,
-- breakdown_value_<k>) and of its latest step (reached_at, reached_seq; null once a step was
-- missed), so every step CTE reads only the one before it: Spark inlines CTEs, and a step CTE
-- read by the next step and by a union again would be planned again for every reader.
step_1 as (
    select
        funnel_code,
        user_id,
        entry_date,
        held_value,
        order_mode,
        entered_at,
        window_ends_at,
        entry_seq as chain_seq,
        entered_at as reached_at,
        entry_seq as reached_seq,
        entered_at as reached_at_1,
        breakdown_value as breakdown_value_1
    from entry_events
    where entry_rank = 1

    union all

    select
        entry_events.funnel_code,
        entry_events.user_id,
        entry_events.entry_date,
        entry_events.held_value,
        entry_events.order_mode,
        entry_events.entered_at,
        entry_events.window_ends_at,
        later_events.event_seq as chain_seq,
        later_events.event_at as reached_at,
        later_events.event_seq as reached_seq,
        later_events.event_at as reached_at_1,
        later_events.breakdown_value as breakdown_value_1
    from entry_events
    inner join held_step_events as later_events
        on entry_events.funnel_code = later_events.funnel_code
        and entry_events.user_id = later_events.user_id
        and entry_events.held_value = later_events.held_value
        and later_events.step_number = 1
        and later_events.is_followed_by_step_2
        and entry_events.entry_seq < later_events.event_seq
        and entry_events.window_ends_at >= later_events.event_at
    where
        entry_events.entry_rank = 1
        and entry_events.order_mode = 'strict'
),

{%- for step in range(2, max_steps + 1) %}

-- Step {{ step }} of each chain: its first step-{{ step }} event within the windows that follows
-- step {{ step - 1 }} as the order mode says (ordered: at or after it; strict: the user's next
-- event; any: at or after the entry). A chain that misses it keeps one row with nulls.
step_{{ step }}_matches as (
    select
        previous_step.funnel_code,
        previous_step.user_id,
        previous_step.entry_date,
        previous_step.held_value,
        previous_step.order_mode,
        previous_step.entered_at,
        previous_step.window_ends_at,
        previous_step.chain_seq,
        {%- for earlier in range(1, step) %}
        previous_step.reached_at_{{ earlier }},
        previous_step.breakdown_value_{{ earlier }},
        {%- endfor %}
        -- greatest() skips nulls (DuckDB and Spark): a chain without a match stays null.
        case
            when step_events_by_entry_date.event_at is null then null
            when previous_step.order_mode = 'any'
                then greatest(previous_step.reached_at, step_events_by_entry_date.event_at)
            else step_events_by_entry_date.event_at
        end as reached_at,
        step_events_by_entry_date.event_seq as reached_seq,
        step_events_by_entry_date.breakdown_value,
        row_number() over (
            partition by
                previous_step.funnel_code, previous_step.user_id, previous_step.entry_date,
                previous_step.held_value, previous_step.chain_seq
            order by step_events_by_entry_date.event_at, step_events_by_entry_date.event_seq
        ) as match_rank
    from step_{{ step - 1 }} as previous_step
    left join step_events_by_entry_date
        on previous_step.funnel_code = step_events_by_entry_date.funnel_code
        and previous_step.user_id = step_events_by_entry_date.user_id
        and previous_step.entry_date = step_events_by_entry_date.entry_date
        and previous_step.held_value = step_events_by_entry_date.held_value
        and step_events_by_entry_date.step_number = {{ step }}
        and previous_step.reached_at is not null
        and previous_step.window_ends_at >= step_events_by_entry_date.event_at
        and case previous_step.order_mode
            when 'strict' then previous_step.reached_seq + 1 = step_events_by_entry_date.event_seq
            when 'any' then previous_step.entered_at <= step_events_by_entry_date.event_at
                and previous_step.chain_seq <> step_events_by_entry_date.event_seq
            else previous_step.reached_at <= step_events_by_entry_date.event_at
        end
        and (
            step_events_by_entry_date.step_window_minutes is null
            or {{ dbt.dateadd('minute', 'step_events_by_entry_date.step_window_minutes', 'previous_step.reached_at') }}
            >= step_events_by_entry_date.event_at
        )
),

step_{{ step }} as (
    select
        funnel_code,
        user_id,
        entry_date,
        held_value,
        order_mode,
        entered_at,
        window_ends_at,
        chain_seq,
        {%- for earlier in range(1, step) %}
        reached_at_{{ earlier }},
        breakdown_value_{{ earlier }},
        {%- endfor %}
        reached_at,
        reached_seq,
        reached_at as reached_at_{{ step }},
        breakdown_value as breakdown_value_{{ step }}
    from step_{{ step }}_matches
    where match_rank = 1
),
{%- endfor %}

-- One row per chain and step it reached.
chain_steps as (
    select
        funnels.step_number,
        chains.funnel_code,
        chains.user_id,
        chains.entry_date,
        chains.held_value,
        chains.chain_seq,
        case funnels.step_number
            {%- for step in range(1, max_steps + 1) %}
            when {{ step }} then chains.reached_at_{{ step }}
            {%- endfor %}
        end as reached_at,
        case funnels.step_number
            {%- for step in range(1, max_steps + 1) %}
            when {{ step }} then chains.breakdown_value_{{ step }}
            {%- endfor %}
        end as breakdown_value
    from step_{{ max_steps }} as chains
    inner join funnels
        on chains.funnel_code = funnels.funnel_code
),

-- The attempt: the day's first entry over held values; its window closes with the last
-- sub-attempt's window.
attempts as (
    select
        funnel_code,
        user_id,
        entry_date,
        min(entered_at) as entered_at,
        max(window_ends_at) as window_ends_at
    from entry_events
    where entry_rank = 1
    group by funnel_code, user_id, entry_date
),

ranked_steps as (
    select
        funnel_code,
        user_id,
        entry_date,
        step_number,
        reached_at,
        breakdown_value,
        row_number() over (
            partition by funnel_code, user_id, entry_date, step_number
            order by reached_at, held_value, chain_seq
        ) as step_rank
    from chain_steps
    where reached_at is not null
),

attempt_steps as (
    select
        ranked_steps.funnel_code,
        ranked_steps.user_id,
        ranked_steps.entry_date,
        ranked_steps.step_number,
        attempts.entered_at,
        ranked_steps.reached_at,
        attempts.window_ends_at,
        ranked_steps.breakdown_value
    from ranked_steps
    inner join attempts
        on ranked_steps.funnel_code = attempts.funnel_code
        and ranked_steps.user_id = attempts.user_id
        and ranked_steps.entry_date = attempts.entry_date
    where ranked_steps.step_rank = 1
),

-- An excluded event after from_step was reached and before to_step was (or, when to_step was
-- never reached, before the window closed) excludes the whole attempt.
excluded_attempts as (
    select distinct
        from_steps.funnel_code,
        from_steps.user_id,
        from_steps.entry_date
    from attempt_steps as from_steps
    inner join funnel_exclusions
        on from_steps.funnel_code = funnel_exclusions.funnel_code
        and from_steps.step_number = funnel_exclusions.from_step
    left join attempt_steps as to_steps
        on from_steps.funnel_code = to_steps.funnel_code
        and from_steps.user_id = to_steps.user_id
        and from_steps.entry_date = to_steps.entry_date
        and funnel_exclusions.to_step = to_steps.step_number
    inner join events
        on from_steps.user_id = events.user_id
        and funnel_exclusions.event_name = events.event_name
        and from_steps.reached_at < events.event_at
        and (
            to_steps.reached_at > events.event_at
            or (to_steps.reached_at is null and from_steps.window_ends_at >= events.event_at)
        )
),

final as (
    select
        attempt_steps.funnel_code,
        attempt_steps.user_id,
        attempt_steps.entry_date,
        cast(attempt_steps.step_number as integer) as step_number,
        attempt_steps.entered_at,
        attempt_steps.reached_at,
        cast(
            {{ dbt.datediff('attempt_steps.entered_at', 'attempt_steps.reached_at', 'second') }} as double
        ) / 60.0 as minutes_to_convert,
        attempt_steps.window_ends_at,
        attempt_steps.breakdown_value,
        excluded_attempts.user_id is not null as is_excluded,
        {{ to_business_timestamp('attempt_steps.window_ends_at') }} > data_dates.data_ends_at
            as is_provisional
    from attempt_steps
    left join excluded_attempts
        on attempt_steps.funnel_code = excluded_attempts.funnel_code
        and attempt_steps.user_id = excluded_attempts.user_id
        and attempt_steps.entry_date = excluded_attempts.entry_date
    cross join data_dates
)

select * from final
