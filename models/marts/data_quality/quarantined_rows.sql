-- Raw rows kept out of staging, one row each, with the reason and the row as it arrived.
{%- set tables = [
    ('users', 'user_id'),
    ('events', 'event_id'),
    ('orders', 'order_id'),
    ('order_items', "order_id || '|' || product_id"),
    ('marketing_spend', "cast(spend_date_raw as " ~ dbt.type_string() ~ ") || '|' || channel"),
    ('contact_preferences', "user_id || '|' || channel"),
    ('deliveries', 'message_id'),
    ('experiment_exposures', "experiment_id || '|' || user_id"),
    ('feedback', 'feedback_id'),
    ('service_tickets', 'ticket_id'),
] %}

with

{% for table_name, key_expression in tables %}
base_{{ table_name }} as (
    select * from {{ ref('base_landing__' ~ table_name) }}
),

quarantined_{{ table_name }} as (
    select
        '{{ table_name }}' as table_name,
        quarantine_reason,
        cast({{ key_expression }} as {{ dbt.type_string() }}) as record_key,
        source_file,
        raw_record
    from base_{{ table_name }}
    where quarantine_reason is not null
),

{% endfor %}
unioned as (
    {% for table_name, _ in tables %}
    select * from quarantined_{{ table_name }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

numbered as (
    select
        *,
        -- Exact copies of a row in one file are legal input (that is what `duplicate` finds), so
        -- the key numbers rows within their file instead of hashing content alone.
        row_number() over (
            partition by table_name, source_file
            order by record_key, raw_record
        ) as row_in_file
    from unioned
),

final as (
    select
        {{ dbt.hash(
            "table_name || '|' || coalesce(source_file, '') || '|' || cast(row_in_file as " ~ dbt.type_string() ~ ")"
        ) }} as quarantined_row_key,
        table_name,
        quarantine_reason,
        record_key,
        source_file,
        raw_record,
        {{ utc_now() }} as quarantined_at
    from numbered
)

select * from final
