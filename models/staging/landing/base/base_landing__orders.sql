-- Every raw order row, typed, with its quarantine reason (null = clean). Read only by
-- stg_landing__orders (clean rows) and quarantined_rows (the rest).
{%- set columns = [
    'order_id',
    'user_id',
    'ordered_at_raw',
    'ordered_at',
    'status',
    'amount_raw',
    'amount',
    'discount_raw',
    'discount',
    'coupon_code',
    'currency',
    'source_file',
    'check_reason',
] %}
with

source as {{ inline_cte() }} (
    {% if landing_table_ready('orders') %}
    select {{ landing_projection('orders') }} from {{ source('landing', 'orders') }}
    {% else %}
    {{ empty_landing_table('orders') }}
    {% endif %}
),

typed as (
    select
        {{ clean_text('source.order_id') }} as order_id,
        {{ clean_text('source.user_id') }} as user_id,
        source.ordered_at as ordered_at_raw,
        {{ safe_cast('source.ordered_at', 'timestamp') }} as ordered_at,
        lower({{ clean_text('source.status') }}) as status,
        {{ clean_text('source.amount') }} as amount_raw,
        {{ safe_cast(clean_text('source.amount'), 'decimal(18, 2)') }} as amount,
        source.discount as discount_raw,
        {{ safe_cast('source.discount', 'decimal(18, 2)') }} as discount,
        {{ clean_text('source.coupon_code') }} as coupon_code,
        upper({{ clean_text('source.currency') }}) as currency,
        source.filename as source_file,
        {{ row_as_struct('source') }} as raw_source
    from source
),

checked as {{ inline_cte() }} (
    select
        *,
        {{ first_failed_check([
            ('missing_key', 'order_id is null or user_id is null'),
            ('missing_value', 'ordered_at_raw is null or status is null or amount_raw is null'),
            ('unparseable_value', unparseable('ordered_at_raw', 'timestamp') ~ ' or amount is null or '
                ~ unparseable('discount_raw', 'decimal(18, 2)')),
            ('invalid_value', "status not in ('paid', 'cancelled', 'refunded')"),
            ('bad_timestamp', out_of_range_timestamp('ordered_at')),
            ('negative_amount', 'amount < 0 or discount < 0'),
        ]) }} as check_reason
    from typed
),

{{ quarantine_ranked_ctes(['order_id'], 'ordered_at, amount, status', columns) }}

select * from final
