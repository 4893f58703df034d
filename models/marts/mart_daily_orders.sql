{{
    config(
        indexes=[{'columns': ['purchase_date'], 'unique': true}],
    )
}}

with

orders as (

    select
        order_status,
        delivery_days,
        is_delivered,
        is_late,
        purchase_date
    from {{ ref('fact_orders') }}

)

select
    purchase_date,
    count(*) as order_count,
    count(*) filter (where is_delivered) as delivered_order_count,
    count(*) filter (where is_late) as late_order_count,
    count(*) filter (where order_status = 'canceled') as canceled_order_count,
    round(avg(delivery_days), 2) as mean_delivery_days
from orders
group by purchase_date
