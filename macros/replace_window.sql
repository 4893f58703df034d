{% macro replace_window(target_relation, source_relation, window_column, columns) -%}
    {#- Delete the window's rows and insert its new ones: both statements run in the one transaction
        that dbt's incremental materialization commits, so readers see the old window or the new one. -#}
    {%- set column_list = columns | join(', ') -%}
    delete from {{ target_relation }}
    where {{ in_watermark_window(window_column) }};

    {{ fault_point('replace_window.' ~ target_relation.identifier) }}

    insert into {{ target_relation }} ({{ column_list }})
    select {{ column_list }}
    from {{ source_relation }};
{%- endmacro %}
