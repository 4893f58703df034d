{% macro matches_pattern(text, pattern) -%}
    {#- Whether a text matches a regular expression somewhere (anchor it with ^ and $ to match it whole); null for
        null. The pattern is the regular expression itself, not a SQL literal, and holds no single quote. -#}
    {{ return(adapter.dispatch('matches_pattern', 'olist_dw')(text, pattern)) }}
{%- endmacro %}


{% macro default__matches_pattern(text, pattern) -%}
    {{ text }} ~ '{{ pattern }}'
{%- endmacro %}


{% macro spark__matches_pattern(text, pattern) -%}
    {#- A backslash escapes in Spark's string literals: doubled, `\d` reaches the regular expression. -#}
    {{ text }} rlike '{{ pattern | replace('\\', '\\\\') }}'
{%- endmacro %}
