-- What the daily delivery sends (投放计划): every audience member of every audience date with
-- the audience's channel, its message id and whether it is sent, applying the delivery rules in
-- order: the holdout is never sent; a user whose contact preference for the channel (or `all`)
-- as of the day is opted_out is suppressed; of the rest, a user gets at most
-- var delivery_max_messages_per_user_per_day messages a day, from the audiences of the highest
-- priority. userops deliver sends the selected rows of one day (userops/delivery.py).
{%- set cap = var('delivery_max_messages_per_user_per_day') %}
with

members as (
    select * from {{ ref('audience_members') }}
),

audiences as (
    select * from {{ ref('audiences') }}
),

preferences as (
    select * from {{ ref('stg_landing__contact_preferences') }}
),

planned as (
    select
        members.audience_id,
        members.audience_date as delivery_date,
        members.user_id,
        members.assignment_group,
        audiences.channel,
        audiences.priority
    from members
    inner join audiences
        on members.audience_id = audiences.audience_id
),

-- Each preference row in force on the delivery day: the latest one set on or before that
-- business day, per channel (the audience's and `all`).
preference_states as (
    select
        planned.audience_id,
        planned.delivery_date,
        planned.user_id,
        preferences.is_opted_out,
        row_number() over (
            partition by planned.audience_id, planned.delivery_date, planned.user_id, preferences.channel
            order by preferences.updated_at desc
        ) as recency_rank
    from planned
    inner join preferences
        on planned.user_id = preferences.user_id
        and preferences.channel in (planned.channel, 'all')
        and {{ to_business_date('preferences.updated_at') }} <= planned.delivery_date
),

suppressed as (
    select distinct
        audience_id,
        delivery_date,
        user_id
    from preference_states
    where recency_rank = 1
        and is_opted_out
),

checked as (
    select
        planned.*,
        case
            when planned.assignment_group = 'holdout' then 'holdout'
            when suppressed.user_id is not null then 'opted_out'
        end as suppression_reason
    from planned
    left join suppressed
        on planned.audience_id = suppressed.audience_id
        and planned.delivery_date = suppressed.delivery_date
        and planned.user_id = suppressed.user_id
),

ranked as (
    select
        checked.*,
        case
            when suppression_reason is null then cast(row_number() over (
                partition by user_id, delivery_date, suppression_reason is null
                order by priority, audience_id
            ) as bigint)
        end as priority_rank
    from checked
),

final as (
    select
        audience_id,
        delivery_date,
        user_id,
        assignment_group,
        channel,
        priority,
        priority_rank,
        coalesce(
            suppression_reason,
            case when priority_rank > {{ cap }} then 'frequency_cap' end
        ) as exclusion_reason,
        suppression_reason is null and priority_rank <= {{ cap }} as is_selected,
        audience_id || ':' || cast(delivery_date as {{ dbt.type_string() }}) || ':' || channel
            || ':' || user_id as message_id
    from ranked
)

select * from final
