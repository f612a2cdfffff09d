with

base_marketing_spend as (
    select * from {{ ref('base_landing__marketing_spend') }}
),

final as (
    select
        spend_date,
        channel,
        spend,
        source_file
    from base_marketing_spend
    where quarantine_reason is null
)

select * from final
