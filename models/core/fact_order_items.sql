{{
    config(
        unique_key=['order_id', 'order_item_id'],
        meta={'window_column': 'order_purchased_at'},
        indexes=[
            {'columns': ['order_id', 'order_item_id'], 'unique': true},
            {'columns': ['product_id']},
            {'columns': ['seller_id']},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

order_items as (

    select
        order_id,
        order_item_id,
        product_id,
        seller_id,
        price,
        freight_value,
        shipping_limit_at,
        order_purchased_at
    from {{ ref('stg_olist__order_items') }}
    where {{ in_watermark_window('order_purchased_at') }}

),

orders as (

    select
        order_id,
        order_status,
        delivered_to_carrier_at
    from {{ ref('stg_olist__orders') }}
    where {{ in_watermark_window('purchased_at') }}

)

select
    order_items.order_id,
    order_items.order_item_id,
    order_items.product_id,
    order_items.seller_id,
    orders.order_status,
    order_items.price,
    order_items.freight_value,
    orders.order_status not in ('canceled', 'unavailable') as is_billable,
    -- Late hand-over: the seller gave the item to the carrier after its shipping limit.
    coalesce(orders.delivered_to_carrier_at > order_items.shipping_limit_at, false) as is_shipped_late,
    order_items.shipping_limit_at,
    orders.delivered_to_carrier_at,
    order_items.order_purchased_at,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from order_items
inner join orders
    on order_items.order_id = orders.order_id
