{% macro merge_window(target_relation, source_relation, unique_key, window_column, columns, audit_columns) -%}
    {#- Make the target's rows of the window equal to the source's, touching only rows that really change:
        - a row of the window that vanished from the source is deleted;
        - a changed row is updated, keeps created_at, takes the run's updated_at and bumps version by one;
        - an unchanged row is left as it is (no new updated_at, no version bump), so re-runs are no-ops;
        - a new row is inserted with version 1.
        PostgreSQL 15 has no MERGE ... WHEN NOT MATCHED BY SOURCE (that came in 17), hence the DELETE. -#}
    {%- set created_at, updated_at, version = audit_columns -%}
    {%- set compared = columns | reject('in', [unique_key, created_at, updated_at, version]) | list -%}
    delete from {{ target_relation }} as target
    where {{ in_watermark_window('target.' ~ window_column) }}
        and not exists (
            select 1
            from {{ source_relation }} as source
            where source.{{ unique_key }} = target.{{ unique_key }}
        );

    merge into {{ target_relation }} as target
    using {{ source_relation }} as source
        on target.{{ unique_key }} = source.{{ unique_key }}
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


{% macro get_incremental_merge_window_sql(arg_dict) -%}
    {#- dbt calls this for models configured with incremental_strategy='merge_window'. -#}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- if unique_key is not string -%}
        {{ exceptions.raise_compiler_error("merge_window needs a single-column unique_key, got " ~ unique_key) }}
    {%- endif -%}
    {%- do assert_unique_key(arg_dict['temp_relation'], unique_key, label='the incoming window of ' ~ model.name) -%}
    {{ return(merge_window(
        target_relation=arg_dict['target_relation'],
        source_relation=arg_dict['temp_relation'],
        unique_key=unique_key,
        window_column=config.require('window_column'),
        columns=arg_dict['dest_columns'] | map(attribute='name') | list,
        audit_columns=config.get('audit_columns', ['created_at', 'updated_at', 'version']),
    )) }}
{%- endmacro %}
