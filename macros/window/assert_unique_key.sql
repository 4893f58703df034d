{% macro assert_unique_key(relation, unique_key, label=none, max_shown=5) -%}
    {#- Fail before merging when the incoming rows repeat a key: a MERGE would stop with an opaque
        "command cannot affect row a second time", and an insert would write a silent double row.
        unique_key is a column or a list of columns; the message shows each repeated key and its row count. -#}
    {%- if execute -%}
        {%- set keys = [unique_key] if unique_key is string else unique_key -%}
        {%- set duplicates = run_query(
            "select " ~ key_text(keys) ~ " as key_value, count(*) as row_count from " ~ relation
            ~ " group by " ~ keys | join(', ') ~ " having count(*) > 1 order by 1 limit " ~ max_shown
        ) -%}
        {%- if duplicates.rows | length > 0 -%}
            {%- set shown = [] -%}
            {%- for row in duplicates.rows -%}
                {%- do shown.append("(" ~ row['key_value'] ~ ") " ~ row['row_count'] ~ " rows") -%}
            {%- endfor -%}
            {{ exceptions.raise_compiler_error(
                "duplicate " ~ keys | join(', ') ~ " in " ~ (label or relation) ~ ": " ~ shown | join('; ')
            ) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
