{% macro customer_rfm_scores(fact_orders, dim_customer) -%}
    {#- One row per person with billable orders: RFM figures, scores and segment. Shared by
        mart_customer_analytics and dim_customer's customer_segment so the two can never disagree. -#}
    with

    orders as (

        select
            customer_id,
            items_value,
            freight_value,
            purchased_at
        from {{ fact_orders }}
        where is_billable

    ),

    customers as (

        select
            customer_id,
            customer_unique_id
        from {{ dim_customer }}

    ),

    people as (

        select
            customers.customer_unique_id,
            count(*) as order_count,
            sum(orders.items_value + orders.freight_value) as total_spent,
            min(orders.purchased_at) as first_order_at,
            max(orders.purchased_at) as last_order_at
        from orders
        inner join customers
            on orders.customer_id = customers.customer_id
        group by customers.customer_unique_id

    ),

    -- Recency is measured from the newest purchase in the data, not from today, so a rebuild of the same data
    -- gives the same scores.
    reference_day as (

        select max(cast(last_order_at as date)) as day_value from people

    ),

    scored as (

        select
            people.customer_unique_id,
            people.order_count,
            people.total_spent,
            {{ days_between('cast(people.last_order_at as date)', 'reference_day.day_value') }} as recency_days,
            ntile(5) over (order by people.last_order_at asc, people.customer_unique_id asc) as recency_score,
            {{ frequency_score('people.order_count') }} as frequency_score,
            ntile(5) over (order by people.total_spent asc, people.customer_unique_id asc) as monetary_score,
            people.first_order_at,
            people.last_order_at
        from people
        cross join reference_day

    )

    select
        customer_unique_id,
        {{ rfm_segment('recency_score', 'frequency_score', 'monetary_score') }} as segment,
        order_count,
        total_spent,
        recency_days,
        recency_score,
        frequency_score,
        monetary_score,
        first_order_at,
        last_order_at
    from scored
{%- endmacro %}
