-- Every raw user row, typed, with its quarantine reason (null = clean).
with

source as (
    {% if landing_table_ready('users') %}
    select {{ landing_projection('users') }} from {{ source('landing', 'users') }}
    {% else %}
    {{ empty_landing_table('users') }}
    {% endif %}
),

typed as (
    select
        {{ clean_text('source.user_id') }} as user_id,
        source.signup_at as signup_at_raw,
        {{ safe_cast('source.signup_at', 'timestamp') }} as signup_at,
        lower({{ clean_text('source.acquisition_channel') }}) as acquisition_channel,
        lower({{ clean_text('source.platform') }}) as platform,
        lower({{ clean_text('source.gender') }}) as gender,
        source.birth_year as birth_year_raw,
        {{ safe_cast('source.birth_year', 'integer') }} as birth_year,
        {{ clean_text('source.city') }} as city,
        source.city_tier as city_tier_raw,
        {{ safe_cast('source.city_tier', 'integer') }} as city_tier,
        -- Hashed at the read (meta.pii in _landing__sources.yml): the clear values never get here.
        source.email_hash,
        source.phone_hash,
        source.filename as source_file,
        {{ row_as_json('source') }} as raw_record
    from source
),

checked as (
    select
        *,
        {{ first_failed_check([
            ('missing_key', 'user_id is null'),
            ('missing_value', 'signup_at_raw is null'),
            ('unparseable_value', unparseable('signup_at_raw', 'timestamp') ~ ' or '
                ~ unparseable('birth_year_raw', 'integer') ~ ' or ' ~ unparseable('city_tier_raw', 'integer')),
            ('invalid_value', 'city_tier not between 1 and 5'),
            ('bad_timestamp', out_of_range_timestamp('signup_at')),
        ]) }} as check_reason
    from typed
),

final as (
    select
        *,
        {{ quarantine_duplicates(['user_id'], 'signup_at') }} as quarantine_reason
    from checked
)

select * from final
