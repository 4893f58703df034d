{% test row_invariants(model, key, invariants, window_column=none) %}
{#- Every row invariant of a model, checked in one scan: one query and one result per model per build, where a
    test per column and rule cost a query, a connection and a result row each. Each invariant is a boolean SQL
    expression every row must satisfy; as with dbt_utils.expression_is_true, a row fails when the expression is
    false (null is no failure: a not-null rule says `<column> is not null`). With window_column, only the rows of
    the run's window are checked: the rows a windowed merge can have written. Returns one row per failed
    invariant: its name, how many rows fail it, and the key of one of them. -#}

with

judged as (

    select
        {%- for invariant in invariants %}
        count(*) filter (where not ({{ invariant.expression }})) as failing_{{ loop.index }},
        min(cast({{ key }} as {{ sql_type('text') }})) filter (where not ({{ invariant.expression }})) as example_{{ loop.index }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
    {%- if window_column %}
    where {{ in_watermark_window(window_column) }}
    {%- endif %}

),

failures as (

    {%- for invariant in invariants %}
    select
        '{{ invariant.name }}' as invariant,
        failing_{{ loop.index }} as failing_rows,
        example_{{ loop.index }} as example_key
    from judged
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

)

select
    invariant,
    failing_rows,
    example_key
from failures
where failing_rows > 0

{% endtest %}
