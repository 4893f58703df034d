{% macro replace_window(target_relation, source_relation, window_column, columns, include_unplaced=false, unique_key=none) -%}
    {#- Delete the window's rows and insert its new ones: both statements run in the one transaction
        that dbt's incremental materialization commits, so readers see the old window or the new one.
        With include_unplaced, rows whose window column is null (no window can claim them) are replaced too:
        every run recomputes them whole. With a unique_key (a column or a list), a key's rows in another window
        are deleted too: a later batch can move a key between windows (an order's purchase time restated), and
        the window it moved to is rebuilt first, or alone. -#}
    {%- set column_list = columns | join(', ') -%}
    {%- set keys = ([unique_key] if unique_key is string else unique_key) if unique_key else [] -%}
    delete from {{ target_relation }}
    where
        {{ in_watermark_window(window_column) }}
        {%- if include_unplaced %}
        or {{ window_column }} is null
        {%- endif %}
        {%- if keys %}
        or ({{ keys | join(', ') }}) in (select {{ keys | join(', ') }} from {{ source_relation }})
        {%- endif %};

    {{ fault_point('replace_window.' ~ target_relation.identifier) }}

    insert into {{ target_relation }} ({{ column_list }})
    select {{ column_list }}
    from {{ source_relation }};
{%- endmacro %}
