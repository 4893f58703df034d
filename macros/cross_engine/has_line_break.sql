{% macro has_line_break(text) -%}
    {#- Whether a text holds a line break (chr(10)); null for null. raw.order_reviews' partial index is on
        PostgreSQL's spelling of it, so the base model's read of the multi-line records uses that index. -#}
    {{ return(adapter.dispatch('has_line_break', 'olist_dw')(text)) }}
{%- endmacro %}


{% macro default__has_line_break(text) -%}
    strpos({{ text }}, chr(10)) > 0
{%- endmacro %}


{% macro spark__has_line_break(text) -%}
    instr({{ text }}, chr(10)) > 0
{%- endmacro %}
