{{
    config(
        incremental_strategy='replace_window',
        window_column='order_purchased_at',
        indexes=[
            {'columns': ['order_id', 'payment_sequential'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

source as (

    select * from {{ source('olist', 'order_payments') }}

),

-- A payment belongs to the window of its order; a payment whose order is not in raw belongs to no window.
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
        cast(payment_sequential as integer) as payment_sequential,
        lower(trim(payment_type)) as payment_type,
        cast(payment_installments as integer) as payment_installments,
        cast(payment_value as numeric(12, 2)) as payment_value,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id
    from source

),

deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='order_id, payment_sequential',
        order_by='loaded_at desc, raw_id desc',
    ) }}

)

select
    deduplicated.order_id,
    deduplicated.payment_sequential,
    deduplicated.batch_id,
    deduplicated.payment_type,
    deduplicated.payment_installments,
    deduplicated.payment_value,
    orders_in_window.purchased_at as order_purchased_at,
    deduplicated.loaded_at
from deduplicated
inner join orders_in_window
    on deduplicated.order_id = orders_in_window.order_id
