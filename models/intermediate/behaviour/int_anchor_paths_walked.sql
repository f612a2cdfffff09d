-- Every occurrence of an anchor event (path_anchor_events) walked path_max_steps steps after
-- and before it: one row per anchor occurrence, direction and step with the event found
-- there and, in window scope, its time (event_at), or a null event_name and event_at when the
-- path has ended (drop-off), and the event one step nearer the anchor (previous_event_name;
-- the anchor itself at step 1). The step times let a strict funnel be re-derived from the
-- walk (tests/behaviour/assert_strict_funnel_conversions_match_anchor_paths.sql, which runs
-- in window scope only); session scope leaves them null rather than pay ten more lead() /
-- lag() columns that event_paths does not read (~25 % of its time on 1 M events). Scope (path_scope):
-- `session` = the anchor's session only; `window` = the user's actions within
-- path_window_minutes of the anchor, across sessions.
--
-- The steps come from lead() / lag() over the user's (or session's) actions in one window
-- pass, not from a join of every (anchor, step) to all events: positions are row_numbers
-- 1, 2, ... without gaps (int_events_sessionised), so the k-th next row is position + k.
{%- set max_steps = var('path_max_steps') %}
{%- set anchor_events = var('path_anchor_events') %}
{%- set scope = var('path_scope') %}
{%- set window_minutes = var('path_window_minutes') %}
{%- if scope not in ['session', 'window'] %}
    {{ exceptions.raise_compiler_error("var path_scope must be session or window, got " ~ scope) }}
{%- endif %}
{%- set sequence = 'partition by user_id, session_id order by session_event_number'
    if scope == 'session' else 'partition by user_id order by user_event_number' %}
{%- set window_start = dbt.dateadd('minute', -window_minutes, 'event_at') %}
{%- set window_end = dbt.dateadd('minute', window_minutes, 'event_at') %}

with

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

neighbours as (
    select
        event_id,
        event_name,
        user_id,
        event_at,
        {%- for step in range(1, max_steps + 1) %}
        lead(event_name, {{ step }}) over ({{ sequence }}) as after_event_{{ step }},
        lag(event_name, {{ step }}) over ({{ sequence }}) as before_event_{{ step }},
        {%- if scope == 'window' %}
        lead(event_at, {{ step }}) over ({{ sequence }}) as after_at_{{ step }},
        lag(event_at, {{ step }}) over ({{ sequence }}) as before_at_{{ step }},
        {%- endif %}
        {%- endfor %}
        user_event_number
    from session_events
),

anchors as (
    select
        event_id as anchor_event_id,
        event_name as anchor_event,
        user_id,
        {%- for step in range(1, max_steps + 1) %}
        {%- for side in ['after', 'before'] %}
        {%- if scope == 'session' %}
        {{ side }}_event_{{ step }},
        {%- else %}
        case
            when {{ side }}_at_{{ step }} between {{ window_start }} and {{ window_end }}
                then {{ side }}_event_{{ step }}
        end as {{ side }}_event_{{ step }},
        case
            when {{ side }}_at_{{ step }} between {{ window_start }} and {{ window_end }}
                then {{ side }}_at_{{ step }}
        end as {{ side }}_at_{{ step }},
        {%- endif %}
        {%- endfor %}
        {%- endfor %}
        -- Users are counted on the path of their first occurrence of the anchor.
        row_number() over (
            partition by user_id, event_name
            order by user_event_number
        ) = 1 as is_first_anchor
    from neighbours
    where event_name in (
        {%- for anchor_event in anchor_events %}
        '{{ anchor_event }}'{{ ',' if not loop.last }}
        {%- endfor %}
    )
),

steps as (
    {%- for step in range(1, max_steps + 1) %}
    select {{ step }} as step_number
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

directions as (
    select 'after' as direction
    union all
    select 'before' as direction
),

final as (
    select
        anchors.anchor_event_id,
        anchors.anchor_event,
        anchors.user_id,
        anchors.is_first_anchor,
        directions.direction,
        steps.step_number,
        case
            {%- for step in range(1, max_steps + 1) %}
            when directions.direction = 'after' and steps.step_number = {{ step }}
                then anchors.after_event_{{ step }}
            when directions.direction = 'before' and steps.step_number = {{ step }}
                then anchors.before_event_{{ step }}
            {%- endfor %}
        end as event_name,
        {%- if scope == 'window' %}
        case
            {%- for step in range(1, max_steps + 1) %}
            when directions.direction = 'after' and steps.step_number = {{ step }}
                then anchors.after_at_{{ step }}
            when directions.direction = 'before' and steps.step_number = {{ step }}
                then anchors.before_at_{{ step }}
            {%- endfor %}
        end as event_at,
        {%- else %}
        cast(null as {{ dbt.type_timestamp() }}) as event_at,
        {%- endif %}
        case
            when steps.step_number = 1 then anchors.anchor_event
            {%- for step in range(2, max_steps + 1) %}
            when directions.direction = 'after' and steps.step_number = {{ step }}
                then anchors.after_event_{{ step - 1 }}
            when directions.direction = 'before' and steps.step_number = {{ step }}
                then anchors.before_event_{{ step - 1 }}
            {%- endfor %}
        end as previous_event_name
    from anchors
    cross join directions
    cross join steps
)

select * from final
