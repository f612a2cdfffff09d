-- Clean service tickets with reply and resolution times in hours.
with

base_tickets as (
    select * from {{ ref('base_landing__service_tickets') }}
),

final as (
    select
        ticket_id,
        user_id,
        opened_at,
        {{ to_business_date('opened_at') }} as opened_date,
        category,
        category = 'complaint' as is_complaint,
        channel,
        first_replied_at,
        resolved_at,
        cast({{ dbt.datediff('opened_at', 'first_replied_at', 'second') }} as double) / 3600
            as first_reply_hours,
        cast({{ dbt.datediff('opened_at', 'resolved_at', 'second') }} as double) / 3600
            as resolution_hours,
        source_file
    from base_tickets
    where quarantine_reason is null
)

select * from final
