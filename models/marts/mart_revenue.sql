{{
    config(
        indexes=[{'columns': ['purchase_date', 'customer_state', 'product_category'], 'unique': true}],
    )
}}

with

order_items as (

    select
        order_id,
        product_id,
        price,
        freight_value
    from {{ ref('fact_order_items') }}
    where is_billable

),

orders as (

    select
        order_id,
        customer_id,
        purchase_date
    from {{ ref('fact_orders') }}

),

customers as (

    select
        customer_id,
        customer_state
    from {{ ref('dim_customer') }}

),

products as (

    select
        product_id,
        product_category
    from {{ ref('dim_product') }}

)

select
    orders.purchase_date,
    -- Items whose customer or product is missing from the export are kept under 'unknown'.
    coalesce(customers.customer_state, 'unknown') as customer_state,
    coalesce(products.product_category, 'unknown') as product_category,
    count(distinct order_items.order_id) as order_count,
    count(*) as item_count,
    sum(order_items.price) as gross_merchandise_value,
    sum(order_items.freight_value) as freight_value
from order_items
inner join orders
    on order_items.order_id = orders.order_id
left join customers
    on orders.customer_id = customers.customer_id
left join products
    on order_items.product_id = products.product_id
group by 1, 2, 3
