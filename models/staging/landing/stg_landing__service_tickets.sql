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
        {{ dbt.datediff('opened_at', 'first_replied_at', 'second') }} / 3600.0 as first_reply_hours,
        {{ dbt.datediff('opened_at', 'resolved_at', 'second') }} / 3600.0 as resolution_hours,
        source_file
    from base_tickets
    where quarantine_reason is null
)

select * from final
