-- Every occurrence of an anchor event (path_anchor_events) walked path_max_steps steps after
-- and before it: one row per anchor occurrence, direction and step with the event found
-- there, or a null event_name when the path has ended (drop-off). Scope (path_scope):
-- `session` = the anchor's session only; `window` = the user's actions within
-- path_window_minutes of the anchor, across sessions.
{%- set max_steps = var('path_max_steps') %}
{%- set anchor_events = var('path_anchor_events') %}
{%- set scope = var('path_scope') %}
{%- set window_minutes = var('path_window_minutes') %}
{%- if scope not in ['session', 'window'] %}
    {{ exceptions.raise_compiler_error("var path_scope must be session or window, got " ~ scope) }}
{%- endif %}
{%- set position = 'session_event_number' if scope == 'session' else 'user_event_number' %}

with

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

anchors as (
    select
        event_id as anchor_event_id,
        event_name as anchor_event,
        user_id,
        session_id,
        event_at as anchor_at,
        {{ position }} as anchor_position,
        -- Users are counted on the path of their first occurrence of the anchor.
        row_number() over (
            partition by user_id, event_name
            order by user_event_number
        ) = 1 as is_first_anchor
    from session_events
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
    select
        'after' as direction,
        1 as step_sign
    union all
    select
        'before' as direction,
        -1 as step_sign
),

grid as (
    select
        anchors.anchor_event_id,
        anchors.anchor_event,
        anchors.user_id,
        anchors.session_id,
        anchors.anchor_at,
        anchors.is_first_anchor,
        directions.direction,
        steps.step_number,
        anchors.anchor_position + directions.step_sign * steps.step_number as target_position
    from anchors
    cross join directions
    cross join steps
),

final as (
    select
        grid.anchor_event_id,
        grid.anchor_event,
        grid.user_id,
        grid.is_first_anchor,
        grid.direction,
        grid.step_number,
        session_events.event_name
    from grid
    left join session_events
        on grid.user_id = session_events.user_id
        and grid.target_position = session_events.{{ position }}
        {%- if scope == 'session' %}
        and grid.session_id = session_events.session_id
        {%- else %}
        and session_events.event_at
            >= {{ dbt.dateadd('minute', -window_minutes, 'grid.anchor_at') }}
        and session_events.event_at
            <= {{ dbt.dateadd('minute', window_minutes, 'grid.anchor_at') }}
        {%- endif %}
)

select * from final
