{% macro watermark_literal(name) -%}
    {#- One window bound as a timestamp literal; a malformed value fails at compile time, naming the variable. -#}
    {%- set value = var(name) | string | trim -%}
    {%- if not modules.re.fullmatch('\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?', value) -%}
        {{ exceptions.raise_compiler_error(
            "var '" ~ name ~ "' must be a date or timestamp like 2017-01-01 or 2017-01-01 06:00:00, got '" ~ value ~ "'"
        ) }}
    {%- endif -%}
    cast('{{ value }}' as timestamp)
{%- endmacro %}
