-- Clean delivery receipts with their business days and funnel flags.
with

base_deliveries as (
    select * from {{ ref('base_landing__deliveries') }}
),

final as (
    select
        message_id,
        user_id,
        channel,
        audience_id,
        campaign_id,
        sent_at,
        {{ to_business_date('sent_at') }} as sent_date,
        delivered_at,
        opened_at,
        clicked_at,
        delivered_at is not null as is_delivered,
        opened_at is not null as is_opened,
        clicked_at is not null as is_clicked,
        failure_reason,
        source_file
    from base_deliveries
    where quarantine_reason is null
)

select * from final
