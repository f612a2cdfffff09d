-- Every raw order-item row, typed, with its quarantine reason (null = clean).
{%- set columns = [
    'order_id',
    'product_id',
    'category',
    'quantity_raw',
    'quantity',
    'unit_price_raw',
    'unit_price',
    'source_file',
    'check_reason',
] %}
with

source as {{ inline_cte() }} (
    {% if landing_table_ready('order_items') %}
    select {{ landing_projection('order_items') }} from {{ source('landing', 'order_items') }}
    {% else %}
    {{ empty_landing_table('order_items') }}
    {% endif %}
),

typed as (
    select
        {{ clean_text('source.order_id') }} as order_id,
        {{ clean_text('source.product_id') }} as product_id,
        lower({{ clean_text('source.category') }}) as category,
        source.quantity as quantity_raw,
        {{ safe_cast('source.quantity', 'integer') }} as quantity,
        source.unit_price as unit_price_raw,
        {{ safe_cast('source.unit_price', 'decimal(18, 2)') }} as unit_price,
        source.filename as source_file,
        {{ row_as_struct('source') }} as raw_source
    from source
),

checked as {{ inline_cte() }} (
    select
        *,
        {{ first_failed_check([
            ('missing_key', 'order_id is null or product_id is null'),
            ('missing_value', 'category is null or quantity_raw is null or unit_price_raw is null'),
            ('unparseable_value', unparseable('quantity_raw', 'integer') ~ ' or '
                ~ unparseable('unit_price_raw', 'decimal(18, 2)')),
            ('negative_amount', 'quantity <= 0 or unit_price < 0'),
        ]) }} as check_reason
    from typed
),

{{ quarantine_ranked_ctes(['order_id', 'product_id'], 'quantity, unit_price', columns) }}

select * from final
