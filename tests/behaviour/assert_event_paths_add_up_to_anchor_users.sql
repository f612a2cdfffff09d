-- Every anchor user is counted once at every step: per (anchor, direction, step), users of
-- all transitions add up to the users with the anchor event, and paths to its occurrences,
-- counted here straight from the sessionised events. A missing step fails too.
-- A check of event_paths in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'event_paths'}}}) }}
{%- set max_steps = var('path_max_steps') %}
{%- set anchor_events = var('path_anchor_events') %}

with

session_events as (
    select * from {{ ref('int_events_sessionised') }}
),

event_paths as (
    select * from {{ ref('event_paths') }}
),

anchors as (
    select
        event_name as anchor_event,
        count(distinct user_id) as anchor_users,
        count(*) as anchor_paths
    from session_events
    where event_name in (
        {%- for anchor_event in anchor_events %}
        '{{ anchor_event }}'{{ ',' if not loop.last }}
        {%- endfor %}
    )
    group by event_name
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

expected as (
    select
        anchors.anchor_event,
        directions.direction,
        steps.step_number,
        anchors.anchor_users,
        anchors.anchor_paths
    from anchors
    cross join directions
    cross join steps
),

summed as (
    select
        anchor_event,
        direction,
        step_number,
        sum(users) as users,
        sum(paths) as paths,
        max(anchor_users) as stated_anchor_users
    from event_paths
    group by anchor_event, direction, step_number
),

final as (
    select
        expected.anchor_event,
        expected.direction,
        expected.step_number,
        expected.anchor_users,
        summed.users,
        expected.anchor_paths,
        summed.paths,
        summed.stated_anchor_users
    from expected
    left join summed
        on expected.anchor_event = summed.anchor_event
        and expected.direction = summed.direction
        and expected.step_number = summed.step_number
    where summed.users is null
        or summed.users <> expected.anchor_users
        or summed.paths <> expected.anchor_paths
        or summed.stated_anchor_users <> expected.anchor_users
)

select * from final
