{{
    config(
        incremental_strategy='merge_window',
        unique_key='order_id',
        window_column='purchased_at',
        indexes=[
            {'columns': ['order_id'], 'unique': true},
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

)

select
    order_id,
    customer_id,
    order_status,
    round(
        cast(extract(epoch from delivered_to_customer_at - purchased_at) / 86400 as numeric), 2
    ) as delivery_days,
    delivered_to_customer_at is not null as is_delivered,
    coalesce(cast(delivered_to_customer_at as date) > estimated_delivery_date, false) as is_late,
    cast(purchased_at as date) as purchase_date,
    estimated_delivery_date,
    purchased_at,
    approved_at,
    delivered_to_carrier_at,
    delivered_to_customer_at,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from orders
