-- Per landing table: raw rows read, rows staged, rows quarantined. Counted from the raw files
-- themselves (not from the base models) so a row lost in between shows up as a difference.
{%- set tables = [
    'users', 'events', 'orders', 'order_items', 'marketing_spend',
    'contact_preferences', 'deliveries', 'experiment_exposures', 'feedback', 'service_tickets',
] %}

with

{% for table_name in tables %}
raw_{{ table_name }} as (
    {% if landing_table_ready(table_name) %}
    select count(*) as row_count from {{ source('landing', table_name) }}
    {% else %}
    select 0 as row_count
    {% endif %}
),

stg_{{ table_name }} as (
    select count(*) as row_count from {{ ref('stg_landing__' ~ table_name) }}
),

{% endfor %}
quarantined_rows as (
    select * from {{ ref('quarantined_rows') }}
),

quarantined_counts as (
    select
        table_name,
        count(*) as row_count
    from quarantined_rows
    group by table_name
),

counted as (
    {% for table_name in tables %}
    select
        '{{ table_name }}' as table_name,
        raw_{{ table_name }}.row_count as raw_rows,
        stg_{{ table_name }}.row_count as staged_rows
    from raw_{{ table_name }}
    cross join stg_{{ table_name }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        counted.table_name,
        counted.raw_rows,
        counted.staged_rows,
        coalesce(quarantined_counts.row_count, 0) as quarantined_rows,
        counted.raw_rows - counted.staged_rows - coalesce(quarantined_counts.row_count, 0) as unaccounted_rows
    from counted
    left join quarantined_counts
        on counted.table_name = quarantined_counts.table_name
)

select * from final
