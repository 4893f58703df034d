{{
    config(
        meta={'window_column': 'order_purchased_at'},
        indexes=[
            {'columns': ['order_id', 'payment_sequential'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

-- The latest load of each payment that passed the row rules (its order staged too), in its order's window.
clean_rows as (

    select * from {{ ref('base_olist__order_payments') }}
    where
        disposition = 'clean'
        and {{ in_watermark_window('order_purchased_at') }}

),

renamed as (

    select
        order_id,
        cast(payment_sequential as integer) as payment_sequential,
        batch_id,
        lower(trim(payment_type)) as payment_type,
        cast(payment_installments as integer) as payment_installments,
        cast(payment_value as numeric(12, 2)) as payment_value,
        order_purchased_at,
        loaded_at
    from clean_rows

)

select
    order_id,
    payment_sequential,
    batch_id,
    payment_type,
    payment_installments,
    payment_value,
    order_purchased_at,
    loaded_at
from renamed
