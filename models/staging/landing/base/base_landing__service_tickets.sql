-- Every raw service-ticket row, typed, with its quarantine reason (null = clean). Read only by
-- stg_landing__service_tickets (clean rows) and quarantined_rows (the rest).
{%- set columns = [
    'ticket_id',
    'user_id',
    'opened_at_raw',
    'opened_at',
    'category',
    'channel',
    'first_replied_at_raw',
    'first_replied_at',
    'resolved_at_raw',
    'resolved_at',
    'source_file',
    'check_reason',
] %}
with

source as {{ inline_cte() }} (
    {% if landing_table_ready('service_tickets') %}
    select {{ landing_projection('service_tickets') }} from {{ source('landing', 'service_tickets') }}
    {% else %}
    {{ empty_landing_table('service_tickets') }}
    {% endif %}
),

known_users as (
    select user_id from {{ ref('int_users_unified') }}
),

typed as (
    select
        {{ clean_text('source.ticket_id') }} as ticket_id,
        {{ clean_text('source.user_id') }} as user_id,
        source.opened_at as opened_at_raw,
        {{ safe_cast('source.opened_at', 'timestamp') }} as opened_at,
        lower({{ clean_text('source.category') }}) as category,
        lower({{ clean_text('source.channel') }}) as channel,
        source.first_replied_at as first_replied_at_raw,
        {{ safe_cast('source.first_replied_at', 'timestamp') }} as first_replied_at,
        source.resolved_at as resolved_at_raw,
        {{ safe_cast('source.resolved_at', 'timestamp') }} as resolved_at,
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
            ('missing_key', 'ticket_id is null or user_id is null'),
            ('missing_value', 'opened_at_raw is null or category is null or channel is null'),
            ('unparseable_value', unparseable('opened_at_raw', 'timestamp') ~ ' or '
                ~ unparseable('first_replied_at_raw', 'timestamp') ~ ' or ' ~ unparseable('resolved_at_raw', 'timestamp')),
            ('invalid_value', "category not in ('complaint', 'delivery', 'refund', 'product_question', 'account')"
                ~ " or channel not in ('phone', 'chat', 'email')"
                ~ ' or first_replied_at < opened_at or resolved_at < opened_at'),
            ('bad_timestamp', out_of_range_timestamp('opened_at') ~ ' or ' ~ out_of_range_timestamp('first_replied_at')
                ~ ' or ' ~ out_of_range_timestamp('resolved_at')),
            ('unknown_user', 'not is_known_user'),
        ]) }} as check_reason
    from typed
),

{{ quarantine_ranked_ctes(['ticket_id'], 'opened_at', columns) }}

select * from final
