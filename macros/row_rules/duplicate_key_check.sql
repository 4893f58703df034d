{% macro duplicate_key_check(key_columns) -%}
    {#- The row rule for a key that comes again later in the same batch: the later row is kept, this one
        quarantined. Needs `key_rank` (1 = latest load of the key); a later batch's row supersedes instead. -#}
    {{ return({
        'rule': 'duplicate_key',
        'fails': 'key_rank > 1',
        'reason': format_message(
            key_columns | join(', ') ~ ' (' ~ (['%s'] * key_columns | length) | join(', ')
            ~ ') comes again later in %s; the later row is kept',
            key_columns + ['_source_file'],
        ),
    }) }}
{%- endmacro %}
