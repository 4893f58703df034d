{% macro sorts_after(left_values, right_values) -%}
    {#- Whether one list of values sorts after another, comparing the first values, then the second on a tie, and so
        on: PostgreSQL's row comparison (l1, l2) > (r1, r2). Null when a compared value is null. -#}
    {{ return(adapter.dispatch('sorts_after', 'olist_dw')(left_values, right_values)) }}
{%- endmacro %}


{% macro default__sorts_after(left_values, right_values) -%}
    ({{ left_values | join(', ') }}) > ({{ right_values | join(', ') }})
{%- endmacro %}


{% macro spark__sorts_after(left_values, right_values) -%}
    {#- Spelled out: (l1 > r1 or (l1 = r1 and (l2 > r2 or (l2 = r2 and ...)))). -#}
    {%- set last = left_values | length - 1 -%}
    {%- for index in range(last + 1) -%}
        ({{ left_values[index] }} > {{ right_values[index] }}
        {%- if index < last %} or ({{ left_values[index] }} = {{ right_values[index] }} and {% endif -%}
    {%- endfor -%}
    {%- for index in range(last + 1) -%}{{ ')' if index == 0 else '))' }}{%- endfor -%}
{%- endmacro %}
