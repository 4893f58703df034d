{% macro seconds_between(start_time, end_time) -%}
    {#- The seconds from one timestamp to another, fractions included (negative when the end comes first). -#}
    {{ return(adapter.dispatch('seconds_between', 'olist_dw')(start_time, end_time)) }}
{%- endmacro %}


{% macro default__seconds_between(start_time, end_time) -%}
    extract(epoch from ({{ end_time }} - {{ start_time }}))
{%- endmacro %}


{% macro spark__seconds_between(start_time, end_time) -%}
    (unix_micros({{ end_time }}) - unix_micros({{ start_time }})) / 1000000.0
{%- endmacro %}
