{{
    config(
        unique_key=['order_id', 'payment_sequential'],
        meta={'window_column': 'order_purchased_at'},
        indexes=[
            {'columns': ['order_id', 'payment_sequential'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

order_payments as (

    select
        order_id,
        payment_sequential,
        payment_type,
        payment_installments,
        payment_value,
        order_purchased_at
    from {{ ref('stg_olist__order_payments') }}
    where {{ in_watermark_window('order_purchased_at') }}

)

select
    order_id,
    payment_sequential,
    payment_type,
    payment_installments,
    payment_value,
    order_purchased_at,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from order_payments
