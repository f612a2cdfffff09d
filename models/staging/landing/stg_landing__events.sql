{#- Incremental by load day like base_landing__events (macros/incremental/day_windows.sql):
    a day-partitioned run restages only the rows of the files it re-read. -#}
{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[load_window_delete_hook()],
    )
}}

with

base_events as (
    select * from {{ ref('base_landing__events') }}
),

event_mapping as (
    select * from {{ ref('event_mapping') }}
),

final as (
    select
        base_events.event_id,
        base_events.user_id,
        base_events.event_at,
        {{ to_business_date('base_events.event_at') }} as event_date,
        base_events.raw_event_name,
        event_mapping.event_name,
        event_mapping.aarrr_stage,
        event_mapping.raw_event_name is not null as is_known_event,
        coalesce(event_mapping.counts_as_active, false) as is_active_event,
        base_events.session_id,
        base_events.platform,
        base_events.page,
        base_events.referrer_user_id,
        base_events.properties,
        {{ json_text('base_events.properties', 'category') }} as category,
        base_events.source_file
    from base_events
    left join event_mapping
        on base_events.raw_event_name = event_mapping.raw_event_name
    where base_events.quarantine_reason is null
        {% if is_incremental() -%}
        and {{ in_load_window('base_events.source_file') }}
        {%- endif %}
)

select * from final
