{% macro is_valid_text(column, kind) -%}
    {#- True when a raw text value converts to `kind` without error, false otherwise (null for null): raw
        columns are text, and one bad value must send its row to quarantine, not fail the whole cast.
        Works on PostgreSQL 15 (no pg_input_is_valid); CASE keeps the casts behind the pattern checks. -#}
    {%- if kind == 'id' -%}
        ({{ column }} ~ '^[0-9a-f]{32}$')
    {%- elif kind == 'position' -%}
        ({{ column }} ~ '^[1-9][0-9]{0,8}$')
    {%- elif kind == 'integer' -%}
        ({{ column }} ~ '^[+-]?[0-9]{1,9}$')
    {%- elif kind == 'amount' -%}
        ({{ column }} ~ '^[+-]?[0-9]{1,10}([.][0-9]{1,2})?$')
    {%- elif kind == 'coordinate' -%}
        ({{ column }} ~ '^[+-]?[0-9]{1,3}([.][0-9]+)?([eE][+-]?[0-9]{1,3})?$')
    {%- elif kind == 'timestamp' -%}
        (case
            when {{ column }} ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?)?$'
                then cast(substr({{ column }}, 9, 2) as integer) <= extract(day from
                    make_date(cast(substr({{ column }}, 1, 4) as integer), cast(substr({{ column }}, 6, 2) as integer), 1)
                    + interval '1 month - 1 day'
                )
            else false
        end)
    {%- else -%}
        {{ exceptions.raise_compiler_error("is_valid_text: unknown kind '" ~ kind ~ "'") }}
    {%- endif -%}
{%- endmacro %}
