-- User paths (用户路径): event-to-event transitions up to path_max_steps steps after and
-- before each anchor event (int_anchor_paths_walked). Per (anchor, direction, step) the
-- events outside the top path_top_events by users become `other`; a path that has ended is
-- `drop_off` from then on, so every anchor user is counted once at every step.
{%- set top_events = var('path_top_events') %}

with

walked as (
    select * from {{ ref('int_anchor_paths_walked') }}
),

event_ranks as (
    select
        anchor_event,
        direction,
        step_number,
        event_name,
        row_number() over (
            partition by anchor_event, direction, step_number
            order by
                sum(case when is_first_anchor then 1 else 0 end) desc,
                count(*) desc,
                event_name
        ) as event_rank
    from walked
    where event_name is not null
    group by anchor_event, direction, step_number, event_name
),

bucketed as (
    select
        walked.anchor_event_id,
        walked.anchor_event,
        walked.user_id,
        walked.is_first_anchor,
        walked.direction,
        walked.step_number,
        case
            when walked.event_name is null then 'drop_off'
            when event_ranks.event_rank <= {{ top_events }} then walked.event_name
            else 'other'
        end as node
    from walked
    left join event_ranks
        on walked.anchor_event = event_ranks.anchor_event
        and walked.direction = event_ranks.direction
        and walked.step_number = event_ranks.step_number
        and walked.event_name = event_ranks.event_name
),

linked as (
    select
        anchor_event,
        is_first_anchor,
        direction,
        step_number,
        coalesce(
            lag(node) over (
                partition by anchor_event_id, direction
                order by step_number
            ),
            anchor_event
        ) as from_event,
        node as to_event
    from bucketed
),

transitions as (
    select
        anchor_event,
        direction,
        step_number,
        from_event,
        to_event,
        sum(case when is_first_anchor then 1 else 0 end) as users,
        count(*) as paths
    from linked
    group by anchor_event, direction, step_number, from_event, to_event
),

anchor_totals as (
    select
        anchor_event,
        sum(case when is_first_anchor then 1 else 0 end) as anchor_users,
        count(*) as anchor_paths
    from walked
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
