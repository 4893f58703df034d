{{
    config(
        meta={'window_column': 'purchased_at'},
        indexes=[
            {'columns': ['order_id'], 'unique': true},
            {'columns': ['purchased_at']},
        ],
    )
}}

with

-- The latest load of each order that passed the row rules, in the window; the other rows stay behind.
clean_rows as (

    select * from {{ ref('base_olist__orders') }}
    where
        disposition = 'clean'
        and {{ in_watermark_window('order_purchased_at') }}

),

renamed as (

    select
        order_id,
        customer_id,
        batch_id,
        lower(trim(order_status)) as order_status,
        cast(cast(nullif(order_estimated_delivery_date, '') as timestamp) as date) as estimated_delivery_date,
        order_purchased_at as purchased_at,
        cast(nullif(order_approved_at, '') as timestamp) as approved_at,
        cast(nullif(order_delivered_carrier_date, '') as timestamp) as delivered_to_carrier_at,
        cast(nullif(order_delivered_customer_date, '') as timestamp) as delivered_to_customer_at,
        loaded_at
    from clean_rows

)

select
    order_id,
    customer_id,
    batch_id,
    order_status,
    estimated_delivery_date,
    purchased_at,
    approved_at,
    delivered_to_carrier_at,
    delivered_to_customer_at,
    loaded_at
from renamed
