{% macro is_valid_text(column, kind) -%}
    {#- True when a raw text value converts to `kind` without error, false otherwise (null for null): raw
        columns are text, and one bad value must send its row to quarantine, not fail the whole cast.
        Works on PostgreSQL 15 (no pg_input_is_valid); CASE keeps the casts behind the pattern checks. -#}
    {%- if kind == 'id' -%}
        ({{ matches_pattern(column, '^[0-9a-f]{32}$') }})
    {%- elif kind == 'position' -%}
        ({{ matches_pattern(column, '^[1-9][0-9]{0,8}$') }})
    {%- elif kind == 'integer' -%}
        ({{ matches_pattern(column, '^[+-]?[0-9]{1,9}$') }})
    {%- elif kind == 'amount' -%}
        ({{ matches_pattern(column, '^[+-]?[0-9]{1,10}([.][0-9]{1,2})?$') }})
    {%- elif kind == 'coordinate' -%}
        ({{ matches_pattern(column, '^[+-]?[0-9]{1,3}([.][0-9]+)?([eE][+-]?[0-9]{1,3})?$') }})
    {%- elif kind == 'timestamp' -%}
        {#- The runner's metadata.purchase_time (migration 0006) holds the rule, written once: the export's
            `YYYY-MM-DD[ HH:MM:SS]`, impossible dates refused. raw.orders is indexed on it to find a window's
            orders, and PostgreSQL inlines it (an immutable SQL function), so a check costs what the pattern does.
            raw_purchase_time calls it (and writes the rule out on engines without it). -#}
        ({{ raw_purchase_time(column) }} is not null)
    {%- else -%}
        {{ exceptions.raise_compiler_error("is_valid_text: unknown kind '" ~ kind ~ "'") }}
    {%- endif -%}
{%- endmacro %}
