-- Every raw event row, typed, with its quarantine reason (null = clean) and, when quarantined,
-- the row as it arrived (raw_record). Unknown event names are not a reason: they are flagged in
-- stg_landing__events.
{#- Columns carried through the quarantine steps; the business day and the file's stats are
    added once at the end (`source` and `checked` are read several times: anything computed
    before the quarantine steps is computed once per read; 100 M events: +150 s). -#}
{%- set columns = [
    'event_id', 'user_id', 'event_time_raw', 'event_at', 'raw_event_name',
    'session_id', 'platform', 'page', 'referrer_user_id', 'properties', 'source_file',
    'check_reason',
] %}
{#- Incremental by load day (macros/incremental/day_windows.sql): a day-partitioned run reads
    only the files of the last few load days, and their rows are checked for duplicates against
    the valid rows already loaded from earlier files. The table is the only full pass over raw
    events; staging (a view on it), quarantine and accounting read it. The business day is
    computed here, once: converting 100 M timestamps to the business time zone takes ~10 s.
    When only new files arrived in the window, a run reads just those
    (macros/incremental/new_files.sql); each row keeps its file's size and modification time
    for that check. -#}
{%- set new_files = landing_new_files_only('events', this) if is_incremental() else none %}
{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[load_window_delete_hook('events')],
    )
}}
with

source as {{ inline_cte() }} (
    {% if landing_table_ready('events') %}
    select {{ landing_projection('events') }} from {{ source('landing', 'events') }}
    {% if is_incremental() -%}
    where {{ in_files_to_read('filename', new_files) }}
    {%- endif %}
    {% else %}
    {{ empty_landing_table('events') }}
    {% endif %}
),

file_stats as (
    {% if landing_table_ready('events') -%}
    {{ landing_file_stats('events') }}
    {%- else -%}
    {{ default__landing_file_stats('events') }}
    {%- endif %}
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
        {{ row_as_struct('source') }} as raw_source
    from source
),

checked as {{ inline_cte() }} (
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

{{ quarantine_ranked_ctes(
    ['event_id'], 'event_at, raw_event_name', columns,
    history=this if is_incremental() else none, final_name='quarantined',
) }},

final as (
    select
        quarantined.event_id,
        quarantined.user_id,
        quarantined.event_time_raw,
        quarantined.event_at,
        {{ to_business_date('quarantined.event_at') }} as event_date,
        quarantined.raw_event_name,
        quarantined.session_id,
        quarantined.platform,
        quarantined.page,
        quarantined.referrer_user_id,
        quarantined.properties,
        quarantined.source_file,
        file_stats.bytes as source_file_bytes,
        file_stats.modified_at as source_file_modified_at,
        quarantined.check_reason,
        quarantined.quarantine_reason,
        quarantined.raw_record
    from quarantined
    left join file_stats
        on quarantined.source_file = file_stats.filename
)

select * from final
