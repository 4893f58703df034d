-- Every raw customer row with its verdict (clean, superseded or quarantined) and the window it belongs to: the
-- purchase time of the order naming it (Olist issues one customer_id per order). stg_olist__customers stages the
-- clean rows; quarantine_olist__customers the rest.

{%- set checks = column_checks('customer_id', 'id') + [duplicate_key_check(['customer_id'])]
    + column_checks('customer_unique_id', 'id') %}
{%- do checks.append({
    'rule': 'orphan_order',
    'fails': 'not has_clean_order',
    'reason': "case when not has_any_order"
        ~ " then format('no order in the orders file names customer_id %s', customer_id)"
        ~ " else format('every order naming customer_id %s is quarantined', customer_id) end",
}) %}

with

source as (

    select * from {{ source('olist', 'customers') }}

),

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

located as (

    select
        source.*,
        orders.order_purchased_at,
        orders.customer_id is not null as has_any_order,
        coalesce(orders.has_clean_order, false) as has_clean_order,
        {{ source_line() }} as source_line,
        row_number() over latest_first as key_rank,
        first_value(source._batch_id) over latest_first as latest_batch_id,
        first_value(source._batch_id) over (
            partition by source._source_file order by source._loaded_at desc, source._raw_id desc
        ) as latest_file_batch_id,
        to_jsonb(source) - array['_batch_id', '_source_file', '_loaded_at', '_raw_id'] as raw_values
    from source
    left join orders
        on source.customer_id = orders.customer_id
    window latest_first as (partition by source.customer_id order by source._loaded_at desc, source._raw_id desc)

),

checked as (

    select
        *,
        -- A later batch restated the key (not a defect: the restatement wins); a row without a usable key is
        -- superseded when a later batch loads its file again, the way an operator fixes one.
        case
            when {{ is_valid_text('customer_id', 'id') }}
                then latest_batch_id != _batch_id
            else latest_file_batch_id != _batch_id
        end as is_superseded,
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
