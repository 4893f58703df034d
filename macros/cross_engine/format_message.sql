{% macro format_message(template, values) -%}
    {#- A text from a template and values, as PostgreSQL's format(): each `%s` takes a value as text (null as
        nothing), each `%L` a value quoted as a SQL literal (null as NULL), in order. The template is the text
        itself, not a SQL literal, and holds no single quote; the values are SQL expressions. -#}
    {{ return(adapter.dispatch('format_message', 'olist_dw')(template, values)) }}
{%- endmacro %}


{% macro default__format_message(template, values) -%}
    format('{{ template }}', {{ values | join(', ') }})
{%- endmacro %}


{% macro spark__format_message(template, values) -%}
    {#- format_string() knows only `%s`, and writes null as "null": each value is turned into its text first. -#}
    {%- set placeholders = modules.re.findall('%[sL]', template) -%}
    {%- if placeholders | length != values | length -%}
        {{ exceptions.raise_compiler_error(
            "format_message: '" ~ template ~ "' has " ~ placeholders | length ~ " placeholders for "
            ~ values | length ~ " values"
        ) }}
    {%- endif -%}
    format_string('{{ template | replace('%L', '%s') }}'
    {%- for value in values -%}
        {%- set value_text = 'cast(' ~ value ~ ' as string)' -%}
        {%- if placeholders[loop.index0] == '%L' -%}
            , coalesce(concat(chr(39), replace({{ value_text }}, chr(39), repeat(chr(39), 2)), chr(39)), 'NULL')
        {%- else -%}
            , coalesce({{ value_text }}, '')
        {%- endif -%}
    {%- endfor -%}
    )
{%- endmacro %}
