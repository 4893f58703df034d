{% macro replace_window(target_relation, source_relation, window_column, columns, include_unplaced=false, unique_key=none) -%}
    {#- Replace the window's rows of a table by the new ones, so readers see the old window or the new one.
        With include_unplaced, rows whose window column is null (no window can claim them) are replaced too:
        every run recomputes them whole. With a unique_key (a column or a list), a key's rows in another window
        are deleted too: a later batch can move a key between windows (an order's purchase time restated), and
        the window it moved to is rebuilt first, or alone. -#}
    {{ return(adapter.dispatch('replace_window', 'olist_dw')(
        target_relation, source_relation, window_column, columns, include_unplaced, unique_key
    )) }}
{%- endmacro %}


{% macro postgres__replace_window(target_relation, source_relation, window_column, columns, include_unplaced=false, unique_key=none) -%}
    {#- Delete the window's rows and insert its new ones: both statements run in the one transaction that dbt's
        incremental materialization commits. -#}
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


{% macro spark__replace_window(target_relation, source_relation, window_column, columns, include_unplaced=false, unique_key=none) -%}
    {#- One MERGE, so one Delta commit: readers see the old window or the new one. Every new row is inserted, and
        the target's rows of the window that no new row matches are deleted (WHEN NOT MATCHED BY SOURCE; a Delta
        MERGE condition takes no subquery). Without a unique_key nothing matches (ON FALSE): the window is deleted
        whole. With one, rows match on it, and a matched row is overwritten by its new row wherever it was: a key
        a later batch moved from another window leaves it, as after postgres__replace_window's DELETE + INSERT. -#}
    {%- set column_list = columns | join(', ') -%}
    {%- set keys = ([unique_key] if unique_key is string else unique_key) if unique_key else [] -%}
    {{ fault_point('replace_window.' ~ target_relation.identifier) }}
    merge into {{ target_relation }} as target
    using {{ source_relation }} as source
        on {% for key in keys %}target.{{ key }} = source.{{ key }}{{ ' and ' if not loop.last }}{% else %}false{% endfor %}
    {%- if keys %}
    when matched then update set
        {%- for column in columns %}
        {{ column }} = source.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    {%- endif %}
    when not matched then insert ({{ column_list }})
    values ({% for column in columns %}source.{{ column }}{{ ', ' if not loop.last }}{% endfor %})
    when not matched by source and (
        {{ in_watermark_window('target.' ~ window_column) }}
        {%- if include_unplaced %}
        or target.{{ window_column }} is null
        {%- endif %}
    ) then delete
{%- endmacro %}
