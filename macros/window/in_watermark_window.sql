{% macro in_watermark_window(column) -%}
    {#- The half-open window [watermark_start, watermark_end) that the run processes. -#}
    {{ column }} >= {{ watermark_literal('watermark_start') }}
    and {{ column }} < {{ watermark_literal('watermark_end') }}
{%- endmacro %}
