{{
    config(
        incremental_strategy='replace_window',
        window_column='purchased_at',
        indexes=[
            {'columns': ['order_id'], 'unique': true},
            {'columns': ['purchased_at']},
        ],
    )
}}

with

source as (

    select * from {{ source('olist', 'orders') }}

),

renamed as (

    select
        order_id,
        customer_id,
        lower(trim(order_status)) as order_status,
        cast(nullif(order_purchase_timestamp, '') as timestamp) as purchased_at,
        cast(nullif(order_approved_at, '') as timestamp) as approved_at,
        cast(nullif(order_delivered_carrier_date, '') as timestamp) as delivered_to_carrier_at,
        cast(nullif(order_delivered_customer_date, '') as timestamp) as delivered_to_customer_at,
        cast(cast(nullif(order_estimated_delivery_date, '') as timestamp) as date) as estimated_delivery_date,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id

    from source

),

-- A key loaded by several batches keeps its latest load: a re-export corrects the earlier one.
deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='order_id',
        order_by='loaded_at desc, raw_id desc',
    ) }}

),

windowed as (

    select * from deduplicated
    where {{ in_watermark_window('purchased_at') }}

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
from windowed
