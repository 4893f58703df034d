{% macro replace_window(target_relation, source_relation, window_column, columns, include_unplaced=false) -%}
    {#- Delete the window's rows and insert its new ones: both statements run in the one transaction
        that dbt's incremental materialization commits, so readers see the old window or the new one.
        With include_unplaced, rows whose window column is null (no window can claim them) are replaced too:
        every run recomputes them whole. -#}
    {%- set column_list = columns | join(', ') -%}
    delete from {{ target_relation }}
    where
        {{ in_watermark_window(window_column) }}
        {%- if include_unplaced %}
        or {{ window_column }} is null
        {%- endif %};

    {{ fault_point('replace_window.' ~ target_relation.identifier) }}

    insert into {{ target_relation }} ({{ column_list }})
    select {{ column_list }}
    from {{ source_relation }};
{%- endmacro %}
