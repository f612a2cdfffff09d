-- A Sankey of event_paths is consistent: the users (and paths) arriving at a node at step k
-- are exactly those leaving it at step k + 1.
-- A check of event_paths in Dagster (it reads several models).
{{ config(meta={'dagster': {'ref': {'name': 'event_paths'}}}) }}
with

event_paths as (
    select * from {{ ref('event_paths') }}
),

arriving as (
    select
        anchor_event,
        direction,
        step_number,
        to_event as node,
        sum(users) as users,
        sum(paths) as paths
    from event_paths
    group by anchor_event, direction, step_number, to_event
),

leaving as (
    select
        anchor_event,
        direction,
        step_number - 1 as step_number,
        from_event as node,
        sum(users) as users,
        sum(paths) as paths
    from event_paths
    where step_number > 1
    group by anchor_event, direction, step_number, from_event
),

final as (
    select
        coalesce(arriving.anchor_event, leaving.anchor_event) as anchor_event,
        coalesce(arriving.direction, leaving.direction) as direction,
        coalesce(arriving.step_number, leaving.step_number) as step_number,
        coalesce(arriving.node, leaving.node) as node,
        arriving.users as users_arriving,
        leaving.users as users_leaving,
        arriving.paths as paths_arriving,
        leaving.paths as paths_leaving
    from arriving
    full outer join leaving
        on arriving.anchor_event = leaving.anchor_event
        and arriving.direction = leaving.direction
        and arriving.step_number = leaving.step_number
        and arriving.node = leaving.node
    where (arriving.step_number is null or arriving.step_number < {{ var('path_max_steps') }})
        and (
            arriving.users is null
            or leaving.users is null
            or arriving.users <> leaving.users
            or arriving.paths <> leaving.paths
        )
)

select * from final
