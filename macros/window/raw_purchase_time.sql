{% macro raw_purchase_time(column) -%}
    {#- A raw purchase time as a timestamp, null when it is not one: the runner's function metadata.purchase_time,
        which raw.orders is indexed on, so a window's orders are found without reading the others.
        is_valid_text(column, 'timestamp') calls it too. -#}
    {{ return(adapter.dispatch('raw_purchase_time', 'olist_dw')(column)) }}
{%- endmacro %}


{% macro default__raw_purchase_time(column) -%}
    metadata.purchase_time({{ column }})
{%- endmacro %}


{% macro spark__raw_purchase_time(column) -%}
    {#- The rule of metadata.purchase_time (the runner's migration 0006), written out: the export's
        `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`, and try_cast refuses an impossible date (the 30th of February). -#}
    case
        when {{ matches_pattern(
            column,
            '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])'
            ~ '( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?)?$'
        ) }}
            then try_cast({{ column }} as timestamp)
    end
{%- endmacro %}
