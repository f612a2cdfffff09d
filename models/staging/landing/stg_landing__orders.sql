with

base_orders as (
    select * from {{ ref('base_landing__orders') }}
),

final as (
    select
        order_id,
        user_id,
        ordered_at,
        {{ to_business_date('ordered_at') }} as order_date,
        status,
        status = 'paid' as is_paid,
        amount,
        coalesce(discount, 0) as discount,
        coupon_code,
        coupon_code is not null or coalesce(discount, 0) > 0 as has_coupon,
        coalesce(currency, '{{ var("default_currency") }}') as currency,
        source_file
    from base_orders
    where quarantine_reason is null
)

select * from final
