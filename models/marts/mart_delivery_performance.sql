{{ config(indexes=[{'columns': ['purchase_month', 'customer_state'], 'unique': true}]) }}

with

orders as (

    select
        customer_id,
        delivery_days,
        days_after_estimate,
        is_late,
        purchase_date
    from {{ ref('fact_orders') }}
    where is_delivered

),

customers as (

    select
        customer_id,
        customer_state
    from {{ ref('dim_customer') }}

)

select
    cast(date_trunc('month', orders.purchase_date) as date) as purchase_month,
    coalesce(customers.customer_state, 'unknown') as customer_state,
    count(*) as delivered_order_count,
    round(avg(case when orders.is_late then 0 else 1 end), 4) as on_time_rate,
    round(avg(orders.delivery_days), 2) as mean_delivery_days,
    round(cast(percentile_cont(0.9) within group (order by orders.delivery_days) as numeric), 2)
        as p90_delivery_days,
    round(avg(orders.days_after_estimate), 2) as mean_days_after_estimate
from orders
left join customers
    on orders.customer_id = customers.customer_id
group by 1, 2
