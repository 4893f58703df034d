{{
    config(
        incremental_strategy='replace_window',
        window_column='order_purchased_at',
        indexes=[
            {'columns': ['order_id', 'order_item_id'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

source as (

    select * from {{ source('olist', 'order_items') }}

),

-- An item belongs to the window of its order; an item whose order is not in raw belongs to no window.
orders_in_window as (

    select
        order_id,
        purchased_at
    from {{ ref('stg_olist__orders') }}
    where {{ in_watermark_window('purchased_at') }}

),

renamed as (

    select
        order_id,
        cast(order_item_id as integer) as order_item_id,
        product_id,
        seller_id,
        cast(price as numeric(12, 2)) as price,
        cast(freight_value as numeric(12, 2)) as freight_value,
        cast(nullif(shipping_limit_date, '') as timestamp) as shipping_limit_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id
    from source

),

deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='order_id, order_item_id',
        order_by='loaded_at desc, raw_id desc',
    ) }}

)

select
    deduplicated.order_id,
    deduplicated.order_item_id,
    deduplicated.product_id,
    deduplicated.seller_id,
    deduplicated.batch_id,
    deduplicated.price,
    deduplicated.freight_value,
    deduplicated.shipping_limit_at,
    orders_in_window.purchased_at as order_purchased_at,
    deduplicated.loaded_at
from deduplicated
inner join orders_in_window
    on deduplicated.order_id = orders_in_window.order_id
