with

base_users as (
    select * from {{ ref('base_landing__users') }}
),

final as (
    select
        user_id,
        signup_at,
        {{ to_business_date('signup_at') }} as signup_date,
        coalesce(acquisition_channel, 'unknown') as acquisition_channel,
        coalesce(platform, 'unknown') as platform,
        coalesce(gender, 'unknown') as gender,
        birth_year,
        city,
        city_tier,
        -- PII is hashed when the landing files are read (meta.pii): only hashes, for joins
        -- with a CRM.
        email_hash,
        phone_hash,
        source_file
    from base_users
    where quarantine_reason is null
)

select * from final
