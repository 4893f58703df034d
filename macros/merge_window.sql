{% macro merge_window(target_relation, source_relation, unique_key, window_column, columns, audit_columns) -%}
    {#- Make the target's rows of the window equal to the source's, touching only rows that really change:
        - a row of the window that vanished from the source is deleted;
        - a changed row is updated, keeps created_at, takes the run's updated_at and bumps version by one;
        - an unchanged row is left as it is (no new updated_at, no version bump), so re-runs are no-ops;
        - a new row is inserted with version 1.
        With window_column none the window is the whole table (reference data, merged whole each run).
        PostgreSQL 15 has no MERGE ... WHEN NOT MATCHED BY SOURCE (that came in 17), hence the DELETE. -#}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set created_at, updated_at, version = audit_columns -%}
    {%- set compared = columns | reject('in', keys + [created_at, updated_at, version]) | list -%}
    delete from {{ target_relation }} as target
    where {{ in_watermark_window('target.' ~ window_column) if window_column else 'true' }}
        and not exists (
            select 1
            from {{ source_relation }} as source
            where {% for key in keys %}source.{{ key }} = target.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        );

    merge into {{ target_relation }} as target
    using {{ source_relation }} as source
        on {% for key in keys %}target.{{ key }} = source.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    when matched and (
        {%- for column in compared %} target.{{ column }}{{ ',' if not loop.last }}{% endfor %}
    ) is distinct from (
        {%- for column in compared %} source.{{ column }}{{ ',' if not loop.last }}{% endfor %}
    ) then update set
        {%- for column in compared %}
        {{ column }} = source.{{ column }},
        {%- endfor %}
        {{ updated_at }} = source.{{ updated_at }},
        {{ version }} = target.{{ version }} + 1
    when not matched then insert ({{ columns | join(', ') }})
    values ({% for column in columns %}source.{{ column }}{{ ', ' if not loop.last }}{% endfor %});
{%- endmacro %}
