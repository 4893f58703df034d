{% macro is_unplaced_purchase_time(purchase_time) -%}
    {#- True when a purchase time places its rows in no window: unreadable, or outside the calendar (a mistyped
        year). Such rows are judged by every run (and quarantined), never planned as a window of their own.
        Written as comparisons on the expression itself, so an index on it serves each branch. -#}
    ({{ purchase_time }} is null
    or {{ purchase_time }} < {{ watermark_literal('date_spine_start') }}
    or {{ purchase_time }} >= {{ watermark_literal('date_spine_end') }})
{%- endmacro %}
