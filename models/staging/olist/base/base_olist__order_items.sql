-- The raw order item rows one window needs judged, each with its verdict (clean, superseded or quarantined) and the
-- window it belongs to: its order's purchase time. stg_olist__order_items stages the clean rows;
-- quarantine_olist__order_items the rest.

{%- set checks = column_checks('order_id', 'id') + column_checks('order_item_id', 'position')
    + [duplicate_key_check(['order_id', 'order_item_id']), orphan_order_check()]
    + column_checks('product_id', 'id')
    + column_checks('seller_id', 'id')
    + column_checks('shipping_limit_date', 'timestamp', required=false)
    + column_checks('price', 'amount')
    + column_checks('freight_value', 'amount') %}
{%- for column in ['price', 'freight_value'] %}
    {%- do checks.append({
        'rule': 'out_of_range',
        'fails': 'cast(' ~ column ~ ' as numeric) < 0',
        'reason': "format('" ~ column ~ " %s is negative', " ~ column ~ ")",
    }) %}
{%- endfor %}

with

orders as (

    select
        order_id,
        disposition,
        quarantine_rule,
        order_purchased_at
    from {{ ref('base_olist__orders') }}
    where is_latest_of_key

),

-- The loads of the orders placed in the window or in none (all loads of a key share its order_id), through
-- raw.order_items' index on order_id; and the loads whose order_id no order load has, which no window can place.
-- That anti-join reads every order id of both tables: the one read here that grows with the history.
-- Raw's columns by name, never raw.*: a column a later file adds (schema drift) stays out of the models, so it
-- can not collide with a column of theirs; raw_values keeps every column of the row as loaded.
source as (

    select
        items.order_id,
        items.order_item_id,
        items.product_id,
        items.seller_id,
        items.shipping_limit_date,
        items.price,
        items.freight_value,
        items._batch_id,
        items._source_file,
        items._loaded_at,
        items._raw_id,
        to_jsonb(items) - array['_batch_id', '_source_file', '_loaded_at', '_raw_id'] as raw_values
    from {{ source('olist', 'order_items') }} as items
    where
        items.order_id in (
            select orders.order_id from orders
            where {{ in_watermark_window('orders.order_purchased_at') }} or orders.order_purchased_at is null
        )

    union all

    select
        items.order_id,
        items.order_item_id,
        items.product_id,
        items.seller_id,
        items.shipping_limit_date,
        items.price,
        items.freight_value,
        items._batch_id,
        items._source_file,
        items._loaded_at,
        items._raw_id,
        to_jsonb(items) - array['_batch_id', '_source_file', '_loaded_at', '_raw_id'] as raw_values
    from {{ source('olist', 'order_items') }} as items
    where not exists (
        select from {{ source('olist', 'orders') }} as all_orders
        where all_orders.order_id = items.order_id
    )

),

loaded_files as (

    {{ loaded_file_positions() }}

),

located as (

    select
        source.*,
        orders.disposition as order_disposition,
        orders.quarantine_rule as order_quarantine_rule,
        orders.order_purchased_at,
        {{ source_line() }} as source_line,
        row_number() over latest_first as key_rank,
        first_value(source._batch_id) over latest_first as latest_batch_id,
        loaded_files.latest_batch_id_of_file
    from source
    left join orders
        on source.order_id = orders.order_id
    left join loaded_files
        on source._batch_id = loaded_files.batch_id and source._source_file = loaded_files.file_name
    window latest_first as (
        partition by source.order_id, source.order_item_id
        order by source._loaded_at desc, source._raw_id desc
    )

),

checked as (

    select
        *,
        -- A later batch restated the key (not a defect: the restatement wins); a row without a usable key is
        -- superseded when a later batch loads its file again, the way an operator fixes one.
        case
            when {{ is_valid_text('order_id', 'id') }} and {{ is_valid_text('order_item_id', 'position') }}
                then latest_batch_id != _batch_id
            else latest_batch_id_of_file != _batch_id
        end as is_superseded,
        {{ quarantine_checks(checks) }}
    from located

)

select
    order_id,
    order_item_id,
    product_id,
    seller_id,
    shipping_limit_date,
    price,
    freight_value,
    _batch_id as batch_id,
    _source_file as source_file,
    source_line,
    raw_values,
    case
        when is_superseded then 'superseded'
        when quarantine_rule is not null then 'quarantined'
        else 'clean'
    end as disposition,
    case when not is_superseded then quarantine_rule end as quarantine_rule,
    case when not is_superseded then quarantine_reason end as quarantine_reason,
    order_purchased_at,
    _loaded_at as loaded_at,
    _raw_id as raw_id
from checked
