-- One row per enabled audience, audience date (every as-of date) and member: users matching any
-- condition group of the audience (all conditions of a group hold) on that date, each assigned
-- to treatment or holdout by a hash of (audience_id, user_id): bucket in [0, 1), holdout when
-- below the audience's holdout_share. The bucket ignores the date, so a user stays in the same
-- group of an audience on every date and every run.
with

tags as (
    select * from {{ ref('int_user_tags_evaluated') }}
),

audiences as (
    select * from {{ ref('audiences') }}
),

audience_conditions as (
    select * from {{ ref('audience_conditions') }}
),

enabled_conditions as (
    select audience_conditions.*
    from audience_conditions
    inner join audiences
        on audience_conditions.audience_id = audiences.audience_id
    where audiences.is_enabled
),

group_sizes as (
    select
        audience_id,
        condition_group,
        count(*) filter (where condition_operator = 'equals') as equals_conditions
    from enabled_conditions
    group by audience_id, condition_group
),

condition_hits as (
    select
        tags.user_id,
        tags.as_of_date,
        enabled_conditions.audience_id,
        enabled_conditions.condition_group,
        count(*) filter (where enabled_conditions.condition_operator = 'equals') as equals_hits,
        count(*) filter (where enabled_conditions.condition_operator = 'not_equals')
            as not_equals_hits
    from tags
    inner join enabled_conditions
        on tags.tag_code = enabled_conditions.tag_code
        and tags.tag_value = enabled_conditions.tag_value
    group by
        tags.user_id,
        tags.as_of_date,
        enabled_conditions.audience_id,
        enabled_conditions.condition_group
),

matched as (
    select distinct
        condition_hits.audience_id,
        condition_hits.as_of_date,
        condition_hits.user_id
    from condition_hits
    inner join group_sizes
        on condition_hits.audience_id = group_sizes.audience_id
        and condition_hits.condition_group = group_sizes.condition_group
    where condition_hits.equals_hits = group_sizes.equals_conditions
        and condition_hits.not_equals_hits = 0
),

bucketed as (
    select
        matched.audience_id,
        matched.as_of_date as audience_date,
        matched.user_id,
        audiences.holdout_share,
        {{ hash_bucket("matched.audience_id || '|' || matched.user_id") }} as holdout_bucket
    from matched
    inner join audiences
        on matched.audience_id = audiences.audience_id
),

final as (
    select
        audience_id,
        audience_date,
        user_id,
        holdout_share,
        holdout_bucket,
        holdout_bucket < holdout_share as is_holdout,
        case when holdout_bucket < holdout_share then 'holdout' else 'treatment' end
            as assignment_group
    from bucketed
)

select * from final
