-- Every raw review row with its verdict (clean, superseded or quarantined) and the window it belongs to:
-- its order's purchase time. stg_olist__order_reviews stages the clean rows; quarantine_olist__order_reviews the
-- rest. The export repeats a review_id across orders, so the key is (review_id, order_id).

{%- set checks = column_checks('review_id', 'id') + column_checks('order_id', 'id')
    + [duplicate_key_check(['review_id', 'order_id']), orphan_order_check()]
    + column_checks('review_score', 'integer')
    + column_checks('review_creation_date', 'timestamp', required=false)
    + column_checks('review_answer_timestamp', 'timestamp', required=false) %}
{%- do checks.append({
    'rule': 'out_of_range',
    'fails': 'cast(review_score as integer) not between 1 and 5',
    'reason': "format('review_score %s is outside 1 to 5', review_score)",
}) %}

with

source as (

    select * from {{ source('olist', 'order_reviews') }}

),

orders as (

    select
        order_id,
        disposition,
        quarantine_rule,
        order_purchased_at
    from {{ ref('base_olist__orders') }}
    where is_latest_of_key

),

located as (

    select
        source.*,
        orders.disposition as order_disposition,
        orders.quarantine_rule as order_quarantine_rule,
        orders.order_purchased_at,
        -- Review messages span lines: the line breaks inside earlier records move this one's line down.
        {{ source_line(['source.review_comment_title', 'source.review_comment_message']) }} as source_line,
        row_number() over latest_first as key_rank,
        first_value(source._batch_id) over latest_first as latest_batch_id,
        first_value(source._batch_id) over (
            partition by source._source_file order by source._loaded_at desc, source._raw_id desc
        ) as latest_file_batch_id,
        to_jsonb(source) - array['_batch_id', '_source_file', '_loaded_at', '_raw_id'] as raw_values
    from source
    left join orders
        on source.order_id = orders.order_id
    window latest_first as (
        partition by source.review_id, source.order_id
        order by source._loaded_at desc, source._raw_id desc
    )

),

checked as (

    select
        *,
        -- A later batch restated the key (not a defect: the restatement wins); a row without a usable key is
        -- superseded when a later batch loads its file again, the way an operator fixes one.
        case
            when {{ is_valid_text('review_id', 'id') }} and {{ is_valid_text('order_id', 'id') }}
                then latest_batch_id != _batch_id
            else latest_file_batch_id != _batch_id
        end as is_superseded,
        {{ quarantine_checks(checks) }}
    from located

)

select
    review_id,
    order_id,
    review_score,
    review_comment_title,
    review_comment_message,
    review_creation_date,
    review_answer_timestamp,
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
