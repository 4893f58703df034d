-- The raw payment rows one window needs judged, each with its verdict (clean, superseded or quarantined) and the
-- window it belongs to: its order's purchase time. stg_olist__order_payments stages the clean rows;
-- quarantine_olist__order_payments keeps the rest.

{%- set checks = column_checks('order_id', 'id') + column_checks('payment_sequential', 'position')
    + [duplicate_key_check(['order_id', 'payment_sequential']), orphan_order_check()]
    + column_checks('payment_installments', 'integer')
    + column_checks('payment_value', 'amount') %}
{%- do checks.append({
    'rule': 'out_of_range',
    'fails': 'cast(payment_installments as integer) < 0',
    'reason': format_message('payment_installments %s is negative', ['payment_installments']),
}) %}
{%- do checks.append({
    'rule': 'out_of_range',
    'fails': 'cast(payment_value as ' ~ sql_type('numeric') ~ ') < 0',
    'reason': format_message('payment_value %s is negative', ['payment_value']),
}) %}

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

-- The loads of the window's orders and of no order (order_children_scope), and their columns by name.
source as (

    {{ order_children_scope(
        source('olist', 'order_payments'),
        'payments',
        ['order_id', 'payment_sequential', 'payment_type', 'payment_installments', 'payment_value'],
    ) }}

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
        partition by source.order_id, source.payment_sequential
        order by source._loaded_at desc, source._raw_id desc
    )

),

checked as (

    select
        *,
        {{ is_superseded([('order_id', 'id'), ('payment_sequential', 'position')]) }} as is_superseded,
        {{ quarantine_checks(checks) }}
    from located

)

select
    order_id,
    payment_sequential,
    payment_type,
    payment_installments,
    payment_value,
    _batch_id as batch_id,
    _source_file as source_file,
    source_line,
    raw_values,
    {{ verdict_columns() }},
    order_purchased_at,
    _loaded_at as loaded_at,
    _raw_id as raw_id
from checked
