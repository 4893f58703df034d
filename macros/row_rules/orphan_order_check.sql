{% macro orphan_order_check() -%}
    {#- The row rule for a row whose order will not be staged: absent from the orders file, or quarantined.
        Needs `order_disposition` and `order_quarantine_rule` from the latest raw row of the order. -#}
    {{ return({
        'rule': 'orphan_order',
        'fails': "coalesce(order_disposition, '') != 'clean'",
        'reason': 'case when order_disposition is null then '
            ~ format_message('order_id %s is not in the orders file', ['order_id'])
            ~ ' else ' ~ format_message('its order %s is quarantined (%s)', ['order_id', 'order_quarantine_rule'])
            ~ ' end',
    }) }}
{%- endmacro %}
