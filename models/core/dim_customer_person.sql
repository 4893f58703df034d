{{
    config(
        unique_key='customer_unique_id',
        indexes=[{'columns': ['customer_unique_id'], 'unique': true}],
    )
}}

-- Merged whole each run from dim_customer: a person's figures depend on all of their customer_ids,
-- which may sit in any window.
with

customers as (

    select
        customer_id,
        customer_unique_id,
        customer_zip_code_prefix,
        customer_city,
        customer_state,
        order_purchased_at
    from {{ ref('dim_customer') }}

),

-- Where the person lives: the address of their latest order.
latest_address as (

    {{ dbt_utils.deduplicate(
        relation='customers',
        partition_by='customer_unique_id',
        order_by='order_purchased_at desc, customer_id desc',
    ) }}

),

people as (

    select
        customer_unique_id,
        count(*) as customer_id_count,
        min(order_purchased_at) as first_order_purchased_at,
        max(order_purchased_at) as last_order_purchased_at
    from customers
    group by customer_unique_id

)

select
    people.customer_unique_id,
    latest_address.customer_zip_code_prefix,
    latest_address.customer_city,
    latest_address.customer_state,
    people.customer_id_count,
    people.first_order_purchased_at,
    people.last_order_purchased_at,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from people
inner join latest_address
    on people.customer_unique_id = latest_address.customer_unique_id
