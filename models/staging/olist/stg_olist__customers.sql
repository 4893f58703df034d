{{
    config(
        meta={'window_column': 'order_purchased_at'},
        indexes=[
            {'columns': ['customer_id'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

-- The latest load of each customer that passed the row rules, in the window of the order naming it.
clean_rows as (

    select * from {{ ref('base_olist__customers') }}
    where
        disposition = 'clean'
        and {{ in_watermark_window('order_purchased_at') }}

),

renamed as (

    select
        customer_id,
        customer_unique_id,
        batch_id,
        {{ zip_code_prefix('customer_zip_code_prefix') }} as customer_zip_code_prefix,
        {{ normalize_city('customer_city') }} as customer_city,
        upper(trim(customer_state)) as customer_state,
        order_purchased_at,
        loaded_at
    from clean_rows

)

select
    customer_id,
    customer_unique_id,
    batch_id,
    customer_zip_code_prefix,
    customer_city,
    customer_state,
    order_purchased_at,
    loaded_at
from renamed
