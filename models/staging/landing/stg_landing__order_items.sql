with

base_order_items as (
    select * from {{ ref('base_landing__order_items') }}
),

final as (
    select
        order_id,
        product_id,
        category,
        quantity,
        unit_price,
        quantity * unit_price as line_amount,
        source_file
    from base_order_items
    where quarantine_reason is null
)

select * from final
