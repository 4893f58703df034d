{% macro watermark_literal(name) -%}
    {#- One window bound as a timestamp literal; a malformed value fails at compile time, naming the variable.
        Read only when executing: at parse time the window is not needed, and reading it there would tie dbt's
        saved parse state to the window's environment variables (see `vars:` in dbt_project.yml). -#}
    {%- if not execute -%}
        cast(null as timestamp)
    {%- else -%}
        {%- set value = var(name) | string | trim -%}
        {%- if not modules.re.fullmatch('\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?', value) -%}
            {{ exceptions.raise_compiler_error(
                "var '" ~ name ~ "' must be a date or timestamp like 2017-01-01 or 2017-01-01 06:00:00, got '"
                ~ value ~ "'"
            ) }}
        {%- endif -%}
        cast('{{ value }}' as timestamp)
    {%- endif -%}
{%- endmacro %}
