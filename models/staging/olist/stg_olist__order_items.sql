{{
    config(
        meta={'window_column': 'order_purchased_at'},
        indexes=[
            {'columns': ['order_id', 'order_item_id'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

-- The latest load of each item that passed the row rules (its order staged too), in its order's window.
clean_rows as (

    select * from {{ ref('base_olist__order_items') }}
    where
        disposition = 'clean'
        and {{ in_watermark_window('order_purchased_at') }}

),

renamed as (

    select
        order_id,
        cast(order_item_id as integer) as order_item_id,
        product_id,
        seller_id,
        batch_id,
        cast(price as numeric(12, 2)) as price,
        cast(freight_value as numeric(12, 2)) as freight_value,
        cast(nullif(shipping_limit_date, '') as timestamp) as shipping_limit_at,
        order_purchased_at,
        loaded_at
    from clean_rows

)

select
    order_id,
    order_item_id,
    product_id,
    seller_id,
    batch_id,
    price,
    freight_value,
    shipping_limit_at,
    order_purchased_at,
    loaded_at
from renamed
