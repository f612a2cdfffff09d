-- User paths (用户路径): event-to-event transitions up to path_max_steps steps after and
-- before each anchor event (int_anchor_paths_walked). Per (anchor, direction, step) the
-- events outside the top path_top_events by users become `other`; a path that has ended is
-- `drop_off` from then on, so every anchor user is counted once at every step.
-- Steps are counted per (previous event, event) pair first (the walk carries the event one
-- step nearer the anchor): ranking and bucketing then work on a few hundred pairs instead of
-- every walked row (a lag() window over every path for the previous node cost ~4x a scan of
-- all events).

with

walked as (
    select * from {{ ref('int_anchor_paths_walked') }}
),

pair_counts as (
    select
        anchor_event,
        direction,
        step_number,
        previous_event_name,
        event_name,
        sum(case when is_first_anchor then 1 else 0 end) as users,
        count(*) as paths
    from walked
    group by anchor_event, direction, step_number, previous_event_name, event_name
),

event_ranks as (
    select
        anchor_event,
        direction,
        step_number,
        event_name,
        row_number() over (
            partition by anchor_event, direction, step_number
            order by sum(users) desc, sum(paths) desc, event_name
        ) as event_rank
    from pair_counts
    where event_name is not null
    group by anchor_event, direction, step_number, event_name
),

bucketed as (
    select
        pair_counts.anchor_event,
        pair_counts.direction,
        pair_counts.step_number,
        {{ path_from_node(
            'pair_counts.step_number', 'pair_counts.anchor_event',
            'pair_counts.previous_event_name', 'previous_ranks.event_rank'
        ) }} as from_event,
        {{ path_to_node('pair_counts.event_name', 'event_ranks.event_rank') }} as to_event,
        pair_counts.users,
        pair_counts.paths
    from pair_counts
    left join event_ranks
        on
            pair_counts.anchor_event = event_ranks.anchor_event
            and pair_counts.direction = event_ranks.direction
            and pair_counts.step_number = event_ranks.step_number
            and pair_counts.event_name = event_ranks.event_name
    left join event_ranks as previous_ranks
        on
            pair_counts.anchor_event = previous_ranks.anchor_event
            and pair_counts.direction = previous_ranks.direction
            and pair_counts.step_number = previous_ranks.step_number + 1
            and pair_counts.previous_event_name = previous_ranks.event_name
),

transitions as (
    select
        anchor_event,
        direction,
        step_number,
        from_event,
        to_event,
        sum(users) as users,
        sum(paths) as paths
    from bucketed
    group by anchor_event, direction, step_number, from_event, to_event
),

anchor_totals as (
    select
        anchor_event,
        sum(users) as anchor_users,
        sum(paths) as anchor_paths
    from pair_counts
    where direction = 'after' and step_number = 1
    group by anchor_event
),

final as (
    select
        transitions.anchor_event,
        cast('{{ var("path_scope") }}' as {{ dbt.type_string() }}) as path_scope,
        transitions.direction,
        cast(transitions.step_number as integer) as step_number,
        transitions.from_event,
        transitions.to_event,
        cast(transitions.users as bigint) as users,
        cast(transitions.paths as bigint) as paths,
        cast(anchor_totals.anchor_users as bigint) as anchor_users,
        cast(anchor_totals.anchor_paths as bigint) as anchor_paths,
        {{ safe_ratio('transitions.users', 'anchor_totals.anchor_users') }} as user_share
    from transitions
    inner join anchor_totals
        on transitions.anchor_event = anchor_totals.anchor_event
)

select * from final
