-- Every raw event row, typed, with its quarantine reason (null = clean). Unknown event names
-- are not a reason: they are flagged in stg_landing__events.
with

source as (
    {% if landing_table_ready('events') %}
    select {{ landing_projection('events') }} from {{ source('landing', 'events') }}
    {% else %}
    {{ empty_landing_table('events') }}
    {% endif %}
),

typed as (
    select
        {{ clean_text('source.event_id') }} as event_id,
        {{ clean_text('source.user_id') }} as user_id,
        source.event_time as event_time_raw,
        {{ safe_cast('source.event_time', 'timestamp') }} as event_at,
        lower({{ clean_text('source.event_name') }}) as raw_event_name,
        {{ clean_text('source.session_id') }} as session_id,
        lower({{ clean_text('source.platform') }}) as platform,
        {{ clean_text('source.page') }} as page,
        {{ clean_text('source.referrer_user_id') }} as referrer_user_id,
        {{ clean_text('source.properties') }} as properties,
        source.filename as source_file,
        {{ row_as_json('source') }} as raw_record
    from source
),

checked as (
    select
        *,
        {{ first_failed_check([
            ('missing_key', 'event_id is null or user_id is null'),
            ('missing_value', 'event_time_raw is null or raw_event_name is null'),
            ('unparseable_value', unparseable('event_time_raw', 'timestamp')
                ~ ' or (properties is not null and not ' ~ is_valid_json('properties') ~ ')'),
            ('bad_timestamp', out_of_range_timestamp('event_at')),
        ]) }} as check_reason
    from typed
),

final as (
    select
        *,
        {{ quarantine_duplicates(['event_id'], 'event_at, raw_event_name') }} as quarantine_reason
    from checked
)

select * from final
