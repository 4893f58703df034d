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
    'reason': "format('payment_installments %s is negative', payment_installments)",
}) %}
{%- do checks.append({
    'rule': 'out_of_range',
    'fails': 'cast(payment_value as numeric) < 0',
    'reason': "format('payment_value %s is negative', payment_value)",
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

-- The loads of the orders placed in the window or in none (all loads of a key share its order_id), through
-- raw.order_payments' index on order_id; and the loads whose order_id no order load has, which no window can place.
-- That anti-join reads every order id of both tables: the one read here that grows with the history.
-- Raw's columns by name, never raw.*: a column a later file adds (schema drift) stays out of the models, so it
-- can not collide with a column of theirs; raw_values keeps every column of the row as loaded.
source as (

    select
        payments.order_id,
        payments.payment_sequential,
        payments.payment_type,
        payments.payment_installments,
        payments.payment_value,
        payments._batch_id,
        payments._source_file,
        payments._loaded_at,
        payments._raw_id,
        to_jsonb(payments) - array['_batch_id', '_source_file', '_loaded_at', '_raw_id'] as raw_values
    from {{ source('olist', 'order_payments') }} as payments
    where
        payments.order_id in (
            select orders.order_id from orders
            where {{ in_watermark_window('orders.order_purchased_at') }} or orders.order_purchased_at is null
        )

    union all

    select
        payments.order_id,
        payments.payment_sequential,
        payments.payment_type,
        payments.payment_installments,
        payments.payment_value,
        payments._batch_id,
        payments._source_file,
        payments._loaded_at,
        payments._raw_id,
        to_jsonb(payments) - array['_batch_id', '_source_file', '_loaded_at', '_raw_id'] as raw_values
    from {{ source('olist', 'order_payments') }} as payments
    where not exists (
        select from {{ source('olist', 'orders') }} as all_orders
        where all_orders.order_id = payments.order_id
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
        partition by source.order_id, source.payment_sequential
        order by source._loaded_at desc, source._raw_id desc
    )

),

checked as (

    select
        *,
        -- A later batch restated the key (not a defect: the restatement wins); a row without a usable key is
        -- superseded when a later batch loads its file again, the way an operator fixes one.
        case
            when {{ is_valid_text('order_id', 'id') }} and {{ is_valid_text('payment_sequential', 'position') }}
                then latest_batch_id != _batch_id
            else latest_batch_id_of_file != _batch_id
        end as is_superseded,
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
