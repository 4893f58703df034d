{% macro date_var(name) -%}
    {#- A project var that must be a date (YYYY-MM-DD), as its text: a var typed by hand is pasted into SQL, so
        anything else fails at compile time, naming the var. -#}
    {%- set value = var(name) | string | trim -%}
    {%- if not modules.re.fullmatch('\d{4}-\d{2}-\d{2}', value) -%}
        {{ exceptions.raise_compiler_error("var '" ~ name ~ "' must be a date like 2016-01-01, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ value }}
{%- endmacro %}
