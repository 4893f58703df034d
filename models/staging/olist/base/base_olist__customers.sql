-- The raw customer rows one window needs judged, each with its verdict (clean, superseded or quarantined) and the
-- window it belongs to: the purchase time of the order naming it (Olist issues one customer_id per order).
-- stg_olist__customers stages the clean rows; quarantine_olist__customers the rest.

{%- set checks = column_checks('customer_id', 'id') + [duplicate_key_check(['customer_id'])]
    + column_checks('customer_unique_id', 'id') %}
{%- do checks.append({
    'rule': 'orphan_order',
    'fails': 'not has_clean_order',
    'reason': 'case when not has_any_order then '
        ~ format_message('no order in the orders file names customer_id %s', ['customer_id'])
        ~ ' else ' ~ format_message('every order naming customer_id %s is quarantined', ['customer_id']) ~ ' end',
}) %}

{%- set raw_column_names = [
    'customer_id', 'customer_unique_id', 'customer_zip_code_prefix', 'customer_city', 'customer_state'
] %}

with

-- base_olist__orders holds every order of each customer it names, so these are whole customers.
orders as (

    select
        customer_id,
        bool_or(disposition = 'clean') as has_clean_order,
        coalesce(
            min(order_purchased_at) filter (where disposition = 'clean'), min(order_purchased_at)
        ) as order_purchased_at
    from {{ ref('base_olist__orders') }}
    where is_latest_of_key
    group by customer_id

),

-- The loads of the customers placed in the window or in none, through raw.customers' index on customer_id; and
-- the loads of customers that no order names in its latest load, which no window can place. That anti-join reads
-- every customer id and order id in raw: the one read here that grows with the history.
-- Raw's columns by name, never raw.*: a column a later file adds (schema drift) stays out of the models, so it
-- can not collide with a column of theirs; raw_values keeps every column of the row as loaded.
source as (

    select
        {{- raw_columns('customers', raw_column_names) }}
    from {{ source('olist', 'customers') }} as customers
    where
        customers.customer_id in (
            select orders.customer_id from orders
            where {{ in_watermark_window('orders.order_purchased_at') }} or orders.order_purchased_at is null
        )

    union all

    select
        {{- raw_columns('customers', raw_column_names) }}
    from {{ source('olist', 'customers') }} as customers
    where not exists (
        select 1 from {{ source('olist', 'orders') }} as naming_orders
        where
            naming_orders.customer_id = customers.customer_id
            and naming_orders.order_id is not null
            and not exists (
                select 1 from {{ source('olist', 'orders') }} as later_orders
                where
                    later_orders.order_id = naming_orders.order_id
                    and {{ sorts_after(
                        ['later_orders._loaded_at', 'later_orders._raw_id'],
                        ['naming_orders._loaded_at', 'naming_orders._raw_id'],
                    ) }}
            )
    )

),

loaded_files as (

    {{ loaded_file_positions() }}

),

located as (

    select
        source.*,
        orders.order_purchased_at,
        orders.customer_id is not null as has_any_order,
        coalesce(orders.has_clean_order, false) as has_clean_order,
        {{ source_line() }} as source_line,
        row_number() over latest_first as key_rank,
        first_value(source._batch_id) over latest_first as latest_batch_id,
        loaded_files.latest_batch_id_of_file
    from source
    left join orders
        on source.customer_id = orders.customer_id
    left join loaded_files
        on source._batch_id = loaded_files.batch_id and source._source_file = loaded_files.file_name
    window latest_first as (partition by source.customer_id order by source._loaded_at desc, source._raw_id desc)

),

checked as (

    select
        *,
        {{ is_superseded([('customer_id', 'id')]) }} as is_superseded,
        {{ quarantine_checks(checks) }}
    from located

)

select
    customer_id,
    customer_unique_id,
    customer_zip_code_prefix,
    customer_city,
    customer_state,
    _batch_id as batch_id,
    _source_file as source_file,
    source_line,
    raw_values,
    {{ verdict_columns() }},
    order_purchased_at,
    _loaded_at as loaded_at,
    _raw_id as raw_id
from checked
