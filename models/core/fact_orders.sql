{{
    config(
        unique_key='order_id',
        meta={'window_column': 'purchased_at'},
        indexes=[
            {'columns': ['order_id'], 'unique': true},
            {'columns': ['customer_id']},
            {'columns': ['purchased_at']},
        ],
    )
}}

with

orders as (

    select
        order_id,
        customer_id,
        order_status,
        estimated_delivery_date,
        purchased_at,
        approved_at,
        delivered_to_carrier_at,
        delivered_to_customer_at
    from {{ ref('stg_olist__orders') }}
    where {{ in_watermark_window('purchased_at') }}

),

order_items as (

    select
        order_id,
        price,
        freight_value
    from {{ ref('stg_olist__order_items') }}
    where {{ in_watermark_window('order_purchased_at') }}

),

order_payments as (

    select
        order_id,
        payment_value
    from {{ ref('stg_olist__order_payments') }}
    where {{ in_watermark_window('order_purchased_at') }}

),

-- Delivered: status delivered with a delivery time. The export has delivered orders without one (when they
-- arrived is unknown) and canceled orders with one (not a delivery): for neither is there a delivery to measure.
orders_classified as (

    select
        order_id,
        customer_id,
        order_status,
        estimated_delivery_date,
        purchased_at,
        approved_at,
        delivered_to_carrier_at,
        delivered_to_customer_at,
        order_status = 'delivered' and delivered_to_customer_at is not null as is_delivered
    from orders

),

items_per_order as (

    select
        order_id,
        count(*) as item_count,
        sum(price) as items_value,
        sum(freight_value) as freight_value
    from order_items
    group by order_id

),

payments_per_order as (

    select
        order_id,
        count(*) as payment_count,
        sum(payment_value) as payment_total
    from order_payments
    group by order_id

)

select
    orders.order_id,
    orders.customer_id,
    orders.order_status,
    coalesce(items_per_order.item_count, 0) as item_count,
    coalesce(items_per_order.items_value, 0) as items_value,
    coalesce(items_per_order.freight_value, 0) as freight_value,
    coalesce(payments_per_order.payment_count, 0) as payment_count,
    coalesce(payments_per_order.payment_total, 0) as payment_total,
    case
        when orders.is_delivered
            then round(
                cast(
                    {{ seconds_between('orders.purchased_at', 'orders.delivered_to_customer_at') }} / 86400
                    as {{ sql_type('numeric') }}
                ),
                2
            )
    end as delivery_days,
    case
        when orders.is_delivered
            then {{ days_between('orders.estimated_delivery_date', 'cast(orders.delivered_to_customer_at as date)') }}
    end as days_after_estimate,
    orders.order_status not in ('canceled', 'unavailable') as is_billable,
    orders.is_delivered,
    orders.is_delivered and cast(orders.delivered_to_customer_at as date) > orders.estimated_delivery_date
        as is_late,
    cast(orders.purchased_at as date) as purchase_date,
    orders.estimated_delivery_date,
    orders.purchased_at,
    orders.approved_at,
    orders.delivered_to_carrier_at,
    orders.delivered_to_customer_at,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from orders_classified as orders
left join items_per_order
    on orders.order_id = items_per_order.order_id
left join payments_per_order
    on orders.order_id = payments_per_order.order_id
