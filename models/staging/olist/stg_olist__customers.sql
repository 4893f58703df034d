{{
    config(
        incremental_strategy='replace_window',
        window_column='order_purchased_at',
        indexes=[
            {'columns': ['customer_id'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

source as (

    select * from {{ source('olist', 'customers') }}

),

-- Olist issues one customer_id per order, so a customer belongs to the window of the order that names it;
-- a customer no order names belongs to no window.
orders_in_window as (

    select
        customer_id,
        min(purchased_at) as purchased_at
    from {{ ref('stg_olist__orders') }}
    where {{ in_watermark_window('purchased_at') }}
    group by customer_id

),

renamed as (

    select
        customer_id,
        customer_unique_id,
        {{ zip_code_prefix('customer_zip_code_prefix') }} as customer_zip_code_prefix,
        {{ normalize_city('customer_city') }} as customer_city,
        upper(trim(customer_state)) as customer_state,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id
    from source

),

deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='customer_id',
        order_by='loaded_at desc, raw_id desc',
    ) }}

)

select
    deduplicated.customer_id,
    deduplicated.customer_unique_id,
    deduplicated.batch_id,
    deduplicated.customer_zip_code_prefix,
    deduplicated.customer_city,
    deduplicated.customer_state,
    orders_in_window.purchased_at as order_purchased_at,
    deduplicated.loaded_at
from deduplicated
inner join orders_in_window
    on deduplicated.customer_id = orders_in_window.customer_id
