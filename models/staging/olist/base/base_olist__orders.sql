-- The raw order rows one window needs judged, each with its verdict: clean, superseded by a later batch, or
-- quarantined by the first row rule it fails. stg_olist__orders stages the window's clean rows;
-- quarantine_olist__orders keeps the quarantined ones. The rows are every load of each order with a load placed in
-- the window or in none, and every order of their customers (a customer belongs to its first order's window):
-- all loads of a key, so its verdicts are those a judgement of the whole history would give.

{%- set checks = column_checks('order_id', 'id') + [duplicate_key_check(['order_id'])]
    + column_checks('customer_id', 'id')
    + column_checks('order_purchase_timestamp', 'timestamp')
    + column_checks('order_approved_at', 'timestamp', required=false)
    + column_checks('order_delivered_carrier_date', 'timestamp', required=false)
    + column_checks('order_delivered_customer_date', 'timestamp', required=false)
    + column_checks('order_estimated_delivery_date', 'timestamp', required=false) %}
{%- do checks.append({
    'rule': 'out_of_range',
    'fails': "coalesce(lower(trim(order_status)), '') not in ('delivered', 'shipped', 'canceled', 'unavailable', 'invoiced', "
        ~ "'processing', 'created', 'approved')",
    'reason': format_message('order_status %L is not a known status', ['order_status']),
}) %}
{%- do checks.append({
    'rule': 'out_of_range',
    'fails': 'cast(order_purchase_timestamp as timestamp) < ' ~ watermark_literal('date_spine_start')
        ~ ' or cast(order_purchase_timestamp as timestamp) >= ' ~ watermark_literal('date_spine_end'),
    'reason': format_message(
        'order_purchase_timestamp %s is outside the calendar (dim_date) %s to %s',
        ['order_purchase_timestamp', "'" ~ date_var('date_spine_start') ~ "'", "'" ~ date_var('date_spine_end') ~ "'"],
    ),
}) %}

{%- set raw_column_names = [
    'order_id', 'customer_id', 'order_status', 'order_purchase_timestamp', 'order_approved_at',
    'order_delivered_carrier_date', 'order_delivered_customer_date', 'order_estimated_delivery_date'
] %}

with

-- Loads placed in the window by their purchase time, and loads no window can place (no usable time, or one
-- outside the calendar), found through raw.orders' index on the purchase time.
placed_here as (

    select
        order_id,
        customer_id
    from {{ source('olist', 'orders') }}
    where
        {{ in_watermark_window(raw_purchase_time('order_purchase_timestamp')) }}
        or {{ is_unplaced_purchase_time(raw_purchase_time('order_purchase_timestamp')) }}

),

scoped_orders as (

    select order_id from placed_here

    union

    select order_id from {{ source('olist', 'orders') }}
    where customer_id in (select placed_here.customer_id from placed_here)

),

-- Every load of those orders (through the index on order_id); a load without an order_id stands alone.
-- Raw's columns by name, never raw.*: a column a later file adds (schema drift) stays out of the models, so it
-- can not collide with a column of theirs; raw_values keeps every column of the row as loaded.
source as (

    select
        {{- raw_columns('orders', raw_column_names) }}
    from {{ source('olist', 'orders') }} as orders
    where orders.order_id in (select scoped_orders.order_id from scoped_orders)

    union all

    select
        {{- raw_columns('orders', raw_column_names) }}
    from {{ source('olist', 'orders') }} as orders
    where
        orders.order_id is null
        and (
            {{ in_watermark_window(raw_purchase_time('order_purchase_timestamp')) }}
            or {{ is_unplaced_purchase_time(raw_purchase_time('order_purchase_timestamp')) }}
        )

),

loaded_files as (

    {{ loaded_file_positions() }}

),

located as (

    select
        source.*,
        {{ source_line() }} as source_line,
        loaded_files.latest_batch_id_of_file,
        row_number() over latest_first as key_rank,
        first_value(source._batch_id) over latest_first as latest_batch_id
    from source
    left join loaded_files
        on source._batch_id = loaded_files.batch_id and source._source_file = loaded_files.file_name
    window latest_first as (partition by source.order_id order by source._loaded_at desc, source._raw_id desc)

),

checked as (

    select
        *,
        {{ is_superseded([('order_id', 'id')]) }} as is_superseded,
        {{ quarantine_checks(checks) }}
    from located

)

select
    order_id,
    customer_id,
    order_status,
    order_purchase_timestamp,
    order_approved_at,
    order_delivered_carrier_date,
    order_delivered_customer_date,
    order_estimated_delivery_date,
    _batch_id as batch_id,
    _source_file as source_file,
    source_line,
    raw_values,
    key_rank = 1 and order_id is not null as is_latest_of_key,
    {{ verdict_columns() }},
    case
        when not {{ is_unplaced_purchase_time(raw_purchase_time('order_purchase_timestamp')) }}
            then {{ raw_purchase_time('order_purchase_timestamp') }}
    end as order_purchased_at,
    _loaded_at as loaded_at,
    _raw_id as raw_id
from checked
