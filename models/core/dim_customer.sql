{{
    config(
        unique_key='customer_id',
        meta={'window_column': 'order_purchased_at'},
        merge_exclude_columns=['customer_segment'],
        post_hook="{{ assign_customer_segments(this, ref('fact_orders')) }}",
        indexes=[
            {'columns': ['customer_id'], 'unique': true},
            {'columns': ['customer_unique_id']},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

-- customer_segment needs every customer's orders (RFM ranks over all of them): the merge inserts 'unscored', and
-- the post-hook assign_customer_segments rescores all rows from fact_orders, hence this dependency.
-- depends_on: {{ ref('fact_orders') }}

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
    1 as version,
    -- Last, where adding it to an existing table puts it, so new and upgraded tables have one column order.
    cast('unscored' as {{ sql_type('text') }}) as customer_segment
from customers
left join geolocation
    on customers.customer_zip_code_prefix = geolocation.zip_code_prefix
