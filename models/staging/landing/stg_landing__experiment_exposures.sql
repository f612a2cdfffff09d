-- Clean first exposures: one row per experiment and user.
with

base_exposures as (
    select * from {{ ref('base_landing__experiment_exposures') }}
),

final as (
    select
        experiment_id,
        user_id,
        variant,
        exposed_at,
        {{ to_business_date('exposed_at') }} as exposed_date,
        source_file
    from base_exposures
    where quarantine_reason is null
)

select * from final
