{{
    config(
        incremental_strategy='merge_window',
        unique_key='customer_id',
        window_column='order_purchased_at',
        indexes=[
            {'columns': ['customer_id'], 'unique': true},
            {'columns': ['customer_unique_id']},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

customers as (

    select
        customer_id,
        customer_unique_id,
        customer_zip_code_prefix,
        customer_city,
        customer_state,
        order_purchased_at
    from {{ ref('stg_olist__customers') }}
    where {{ in_watermark_window('order_purchased_at') }}

),

geolocation as (

    select
        zip_code_prefix,
        latitude,
        longitude
    from {{ ref('dim_geolocation') }}

)

select
    customers.customer_id,
    customers.customer_unique_id,
    customers.customer_zip_code_prefix,
    customers.customer_city,
    customers.customer_state,
    geolocation.latitude,
    geolocation.longitude,
    customers.order_purchased_at,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from customers
left join geolocation
    on customers.customer_zip_code_prefix = geolocation.zip_code_prefix
