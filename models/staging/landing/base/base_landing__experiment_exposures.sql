-- Every raw exposure row, typed, with its quarantine reason (null = clean). Read only by
-- stg_landing__experiment_exposures (clean rows) and quarantined_rows (the rest).
{%- set columns = [
    'experiment_id',
    'user_id',
    'variant',
    'exposed_at_raw',
    'exposed_at',
    'source_file',
    'check_reason',
] %}
with

source as {{ inline_cte() }} (
    {% if landing_table_ready('experiment_exposures') %}
    select {{ landing_projection('experiment_exposures') }} from {{ source('landing', 'experiment_exposures') }}
    {% else %}
    {{ empty_landing_table('experiment_exposures') }}
    {% endif %}
),

known_users as (
    select user_id from {{ ref('int_users_unified') }}
),

experiment_variants as (
    select * from {{ ref('experiment_variants') }}
),

typed as (
    select
        {{ clean_text('source.experiment_id') }} as experiment_id,
        {{ clean_text('source.user_id') }} as user_id,
        {{ clean_text('source.variant') }} as variant,
        source.exposed_at as exposed_at_raw,
        {{ safe_cast('source.exposed_at', 'timestamp') }} as exposed_at,
        known_users.user_id is not null as is_known_user,
        experiment_variants.variant is not null as is_declared_variant,
        source.filename as source_file,
        {{ row_as_struct('source') }} as raw_source
    from source
    left join known_users
        on {{ clean_text('source.user_id') }} = known_users.user_id
    left join experiment_variants
        on {{ clean_text('source.experiment_id') }} = experiment_variants.experiment_id
        and {{ clean_text('source.variant') }} = experiment_variants.variant
),

checked as {{ inline_cte() }} (
    select
        *,
        {{ first_failed_check([
            ('missing_key', 'experiment_id is null or user_id is null'),
            ('missing_value', 'variant is null or exposed_at_raw is null'),
            ('unparseable_value', unparseable('exposed_at_raw', 'timestamp')),
            ('invalid_value', 'not is_declared_variant'),
            ('bad_timestamp', out_of_range_timestamp('exposed_at')),
            ('unknown_user', 'not is_known_user'),
        ]) }} as check_reason
    from typed
),

{{ quarantine_ranked_ctes(['experiment_id', 'user_id'], 'exposed_at, variant', columns) }}

select * from final
