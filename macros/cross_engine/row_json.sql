{% macro row_json(alias, columns, excluded_columns) -%}
    {#- A row of a table as a JSON object of its columns, but the excluded ones. PostgreSQL reads the row whole, so a
        column beyond `columns` (one a later file added) is in it too; Spark writes the columns listed, nulls
        included. -#}
    {{ return(adapter.dispatch('row_json', 'olist_dw')(alias, columns, excluded_columns)) }}
{%- endmacro %}


{% macro default__row_json(alias, columns, excluded_columns) -%}
    to_jsonb({{ alias }}) - array['{{ excluded_columns | join("', '") }}']
{%- endmacro %}


{% macro spark__row_json(alias, columns, excluded_columns) -%}
    {#- ignoreNullFields=false writes null values as Spark does; Sail 0.7 leaves them out all the same. -#}
    to_json(
        named_struct(
            {%- for column in columns | reject('in', excluded_columns) %}
            '{{ column }}', {{ alias }}.{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        ),
        map('ignoreNullFields', 'false')
    )
{%- endmacro %}
