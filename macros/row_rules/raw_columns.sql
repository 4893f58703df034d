{% macro raw_columns(alias, columns) -%}
    {#- A raw table's columns by name, never raw.*: a column a later file adds (schema drift) stays out of the
        models, so it can not collide with a column of theirs; `raw_values` keeps every column of the row as
        loaded, and the load's own columns follow for the verdicts. -#}
    {%- for column in columns %}
        {{ alias }}.{{ column }},
    {%- endfor %}
        {{ alias }}._batch_id,
        {{ alias }}._source_file,
        {{ alias }}._loaded_at,
        {{ alias }}._raw_id,
        {{ row_json(alias, columns, ['_batch_id', '_source_file', '_loaded_at', '_raw_id']) }} as raw_values
{%- endmacro %}
