-- Who entered and who left each audience on each audience date (人群变化): members of the date
-- who were not members on the audience's previous audience date (entered), and members of the
-- previous date who are no longer members (left). On an audience's first date every member has
-- entered.
with

members as (
    select * from {{ ref('audience_members') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

dated as (
    select
        as_of_date as audience_date,
        lag(as_of_date) over (order by as_of_date) as previous_audience_date
    from as_of_dates
),

current_members as (
    select
        members.audience_id,
        members.audience_date,
        dated.previous_audience_date,
        members.user_id,
        members.assignment_group
    from members
    inner join dated
        on members.audience_date = dated.audience_date
),

entered as (
    select
        current_members.audience_id,
        current_members.audience_date,
        current_members.previous_audience_date,
        current_members.user_id,
        current_members.assignment_group,
        'entered' as change_type
    from current_members
    left join members as previous_members
        on current_members.audience_id = previous_members.audience_id
        and current_members.previous_audience_date = previous_members.audience_date
        and current_members.user_id = previous_members.user_id
    where previous_members.user_id is null
),

left_audience as (
    select
        previous_members.audience_id,
        dated.audience_date,
        dated.previous_audience_date,
        previous_members.user_id,
        previous_members.assignment_group,
        'left' as change_type
    from members as previous_members
    inner join dated
        on previous_members.audience_date = dated.previous_audience_date
    left join members as current_members
        on previous_members.audience_id = current_members.audience_id
        and dated.audience_date = current_members.audience_date
        and previous_members.user_id = current_members.user_id
    where current_members.user_id is null
),

final as (
    select * from entered
    union all
    select * from left_audience
)

select * from final
