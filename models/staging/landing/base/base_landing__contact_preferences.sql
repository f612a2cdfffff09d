-- Every raw contact-preference row, typed, with its quarantine reason (null = clean). Read only
-- by stg_landing__contact_preferences (clean rows) and quarantined_rows (the rest).
{%- set columns = [
    'user_id',
    'channel',
    'contact_status',
    'updated_at_raw',
    'updated_at',
    'source_file',
    'check_reason',
] %}
with

source as {{ inline_cte() }} (
    {% if landing_table_ready('contact_preferences') %}
    select {{ landing_projection('contact_preferences') }} from {{ source('landing', 'contact_preferences') }}
    {% else %}
    {{ empty_landing_table('contact_preferences') }}
    {% endif %}
),

known_users as (
    select user_id from {{ ref('int_users_unified') }}
),

typed as (
    select
        {{ clean_text('source.user_id') }} as user_id,
        lower({{ clean_text('source.channel') }}) as channel,
        lower({{ clean_text('source.contact_status') }}) as contact_status,
        source.updated_at as updated_at_raw,
        {{ safe_cast('source.updated_at', 'timestamp') }} as updated_at,
        known_users.user_id is not null as is_known_user,
        source.filename as source_file,
        {{ row_as_struct('source') }} as raw_source
    from source
    left join known_users
        on {{ clean_text('source.user_id') }} = known_users.user_id
),

checked as {{ inline_cte() }} (
    select
        *,
        {{ first_failed_check([
            ('missing_key', 'user_id is null or channel is null'),
            ('missing_value', 'contact_status is null or updated_at_raw is null'),
            ('unparseable_value', unparseable('updated_at_raw', 'timestamp')),
            ('invalid_value', "channel not in ('push', 'sms', 'all') or contact_status not in ('opted_in', 'opted_out')"),
            ('bad_timestamp', out_of_range_timestamp('updated_at')),
            ('unknown_user', 'not is_known_user'),
        ]) }} as check_reason
    from typed
),

{{ quarantine_ranked_ctes(['user_id', 'channel', 'updated_at'], 'contact_status', columns) }}

select * from final
