-- Every raw delivery-receipt row, typed, with its quarantine reason (null = clean). Read only by
-- stg_landing__deliveries (clean rows) and quarantined_rows (the rest).
{%- set columns = [
    'message_id',
    'user_id',
    'channel',
    'sent_at_raw',
    'sent_at',
    'audience_id',
    'campaign_id',
    'delivered_at_raw',
    'delivered_at',
    'opened_at_raw',
    'opened_at',
    'clicked_at_raw',
    'clicked_at',
    'failure_reason',
    'source_file',
    'check_reason',
] %}
with

source as {{ inline_cte() }} (
    {% if landing_table_ready('deliveries') %}
    select {{ landing_projection('deliveries') }} from {{ source('landing', 'deliveries') }}
    {% else %}
    {{ empty_landing_table('deliveries') }}
    {% endif %}
),

known_users as (
    select user_id from {{ ref('int_users_unified') }}
),

typed as (
    select
        {{ clean_text('source.message_id') }} as message_id,
        {{ clean_text('source.user_id') }} as user_id,
        lower({{ clean_text('source.channel') }}) as channel,
        source.sent_at as sent_at_raw,
        {{ safe_cast('source.sent_at', 'timestamp') }} as sent_at,
        {{ clean_text('source.audience_id') }} as audience_id,
        {{ clean_text('source.campaign_id') }} as campaign_id,
        source.delivered_at as delivered_at_raw,
        {{ safe_cast('source.delivered_at', 'timestamp') }} as delivered_at,
        source.opened_at as opened_at_raw,
        {{ safe_cast('source.opened_at', 'timestamp') }} as opened_at,
        source.clicked_at as clicked_at_raw,
        {{ safe_cast('source.clicked_at', 'timestamp') }} as clicked_at,
        {{ clean_text('source.failure_reason') }} as failure_reason,
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
            ('missing_key', 'message_id is null or user_id is null'),
            ('missing_value', 'channel is null or sent_at_raw is null'),
            ('unparseable_value', unparseable('sent_at_raw', 'timestamp') ~ ' or '
                ~ unparseable('delivered_at_raw', 'timestamp') ~ ' or '
                ~ unparseable('opened_at_raw', 'timestamp') ~ ' or '
                ~ unparseable('clicked_at_raw', 'timestamp')),
            ('invalid_value', "channel not in ('push', 'sms')"
                ~ ' or delivered_at < sent_at or opened_at < delivered_at or clicked_at < sent_at'
                ~ ' or (opened_at is not null and delivered_at is null)'
                ~ ' or (clicked_at is not null and delivered_at is null)'),
            ('bad_timestamp', out_of_range_timestamp('sent_at') ~ ' or ' ~ out_of_range_timestamp('delivered_at')
                ~ ' or ' ~ out_of_range_timestamp('opened_at') ~ ' or ' ~ out_of_range_timestamp('clicked_at')),
            ('unknown_user', 'not is_known_user'),
        ]) }} as check_reason
    from typed
),

{{ quarantine_ranked_ctes(['message_id'], 'sent_at', columns) }}

select * from final
