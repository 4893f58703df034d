-- The raw review rows one window needs judged, each with its verdict (clean, superseded or quarantined) and the
-- window it belongs to: its order's purchase time. stg_olist__order_reviews stages the clean rows;
-- quarantine_olist__order_reviews the rest. The export repeats a review_id across orders, so the key is
-- (review_id, order_id).

{%- set checks = column_checks('review_id', 'id') + column_checks('order_id', 'id')
    + [duplicate_key_check(['review_id', 'order_id']), orphan_order_check()]
    + column_checks('review_score', 'integer')
    + column_checks('review_creation_date', 'timestamp', required=false)
    + column_checks('review_answer_timestamp', 'timestamp', required=false) %}
{%- do checks.append({
    'rule': 'out_of_range',
    'fails': 'cast(review_score as integer) not between 1 and 5',
    'reason': format_message('review_score %s is outside 1 to 5', ['review_score']),
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
        source('olist', 'order_reviews'),
        'reviews',
        ['review_id', 'order_id', 'review_score', 'review_comment_title', 'review_comment_message', 'review_creation_date', 'review_answer_timestamp'],
    ) }}

),

loaded_files as (

    {{ loaded_file_positions() }}

),

-- Review messages span lines, so a row's line also counts the line breaks inside its file's earlier records: summed
-- from the few records that have any, found through raw.order_reviews' partial index on them. Their files are
-- matched against the distinct files of the rows judged: every row of a file has the same key, and a join keyed on
-- it that is not deduplicated first walks all of them for each record (Sail: stuck over 12 minutes at 1M orders).
broken_records as (

    select
        _batch_id,
        _source_file,
        _raw_id,
        length(coalesce(review_comment_title, '')) - length(replace(coalesce(review_comment_title, ''), chr(10), ''))
        + length(coalesce(review_comment_message, ''))
        - length(replace(coalesce(review_comment_message, ''), chr(10), '')) as line_breaks,
        false as is_judged
    from {{ source('olist', 'order_reviews') }}
    where
        ({{ has_line_break('review_comment_title') }} or {{ has_line_break('review_comment_message') }})
        and (_batch_id, _source_file) in (
            select distinct
                source._batch_id,
                source._source_file
            from source
        )

),

line_breaks as (

    select
        _raw_id,
        is_judged,
        -- A row's own line breaks come after its first line: at equal raw ids the judged row sorts first.
        coalesce(sum(line_breaks) over (
            partition by _batch_id, _source_file
            order by _raw_id asc, is_judged desc
            rows between unbounded preceding and 1 preceding
        ), 0) as line_breaks_before
    from (
        select
            _batch_id,
            _source_file,
            _raw_id,
            0 as line_breaks,
            true as is_judged
        from source
        union all
        select
            _batch_id,
            _source_file,
            _raw_id,
            line_breaks,
            is_judged
        from broken_records
    ) as records

),

located as (

    select
        source.*,
        orders.disposition as order_disposition,
        orders.quarantine_rule as order_quarantine_rule,
        orders.order_purchased_at,
        {{ source_line('line_breaks.line_breaks_before') }} as source_line,
        row_number() over latest_first as key_rank,
        first_value(source._batch_id) over latest_first as latest_batch_id,
        loaded_files.latest_batch_id_of_file
    from source
    left join orders
        on source.order_id = orders.order_id
    left join loaded_files
        on source._batch_id = loaded_files.batch_id and source._source_file = loaded_files.file_name
    left join line_breaks
        on source._raw_id = line_breaks._raw_id and line_breaks.is_judged
    window latest_first as (
        partition by source.review_id, source.order_id
        order by source._loaded_at desc, source._raw_id desc
    )

),

checked as (

    select
        *,
        {{ is_superseded([('review_id', 'id'), ('order_id', 'id')]) }} as is_superseded,
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
    {{ verdict_columns() }},
    order_purchased_at,
    _loaded_at as loaded_at,
    _raw_id as raw_id
from checked
