{% macro key_text(columns, alias=none) -%}
    {#- A key's values as one text, comma-separated, for messages naming a row: `concat_ws(', ', a::text, b::text)`. -#}
    {{ return(adapter.dispatch('key_text', 'olist_dw')(columns, alias)) }}
{%- endmacro %}


{% macro default__key_text(columns, alias=none) -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    concat_ws(', ', {% for column in columns %}{{ prefix }}{{ column }}::text{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}


{% macro spark__key_text(columns, alias=none) -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    concat_ws(', ', {% for column in columns %}cast({{ prefix }}{{ column }} as string){{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}
