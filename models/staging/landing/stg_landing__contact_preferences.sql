-- Every clean contact-preference change, with is_current on the latest one per (user_id,
-- channel): the user's status on that channel now.
with

base_contact_preferences as (
    select * from {{ ref('base_landing__contact_preferences') }}
),

ranked as (
    select
        user_id,
        channel,
        contact_status,
        updated_at,
        source_file,
        row_number() over (
            partition by user_id, channel
            order by updated_at desc
        ) as recency_rank
    from base_contact_preferences
    where quarantine_reason is null
),

final as (
    select
        user_id,
        channel,
        contact_status,
        contact_status = 'opted_out' as is_opted_out,
        recency_rank = 1 as is_current,
        updated_at,
        source_file
    from ranked
)

select * from final
