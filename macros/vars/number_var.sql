{% macro number_var(name, min_value=none, max_value=none) -%}
    {#- A project var that must be a number, as a SQL literal: a var typed by hand is pasted into SQL, so anything
        but a number (or a number out of range) fails at compile time, naming the var. -#}
    {%- set value = var(name) | string | trim -%}
    {%- if not modules.re.fullmatch('[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?', value) -%}
        {{ exceptions.raise_compiler_error("var '" ~ name ~ "' must be a number, got '" ~ value ~ "'") }}
    {%- endif -%}
    {%- if (min_value is not none and value | float < min_value) or (max_value is not none and value | float > max_value) -%}
        {{ exceptions.raise_compiler_error(
            "var '" ~ name ~ "' must be between " ~ min_value ~ " and " ~ max_value ~ ", got " ~ value
        ) }}
    {%- endif -%}
    {{ value }}
{%- endmacro %}
