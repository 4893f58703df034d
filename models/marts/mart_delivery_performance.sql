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

),

monthly_figures as (

    select
        cast({{ dbt.date_trunc('month', 'orders.purchase_date') }} as date) as purchase_month,
        coalesce(customers.customer_state, 'unknown') as customer_state,
        count(*) as delivered_order_count,
        count(*) filter (where orders.is_late is not true) as on_time_order_count,
        sum(orders.delivery_days) as delivery_days_sum,
        round(cast({{ percentile('orders.delivery_days', 0.9) }} as {{ sql_type('numeric') }}), 2)
            as p90_delivery_days,
        count(orders.days_after_estimate) as promised_order_count,
        sum(orders.days_after_estimate) as days_after_estimate_sum
    from orders
    left join customers
        on orders.customer_id = customers.customer_id
    group by 1, 2

)

select
    purchase_month,
    customer_state,
    delivered_order_count,
    round(1.0 * on_time_order_count / delivered_order_count, 4) as on_time_rate,
    round(delivery_days_sum / delivered_order_count, 2) as mean_delivery_days,
    p90_delivery_days,
    round(1.0 * days_after_estimate_sum / nullif(promised_order_count, 0), 2) as mean_days_after_estimate,
    on_time_order_count,
    delivery_days_sum,
    promised_order_count,
    days_after_estimate_sum
from monthly_figures
