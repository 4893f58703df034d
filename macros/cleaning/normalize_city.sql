{% macro normalize_city(column) -%}
    {#- One spelling per city: the export writes "sao paulo", "são paulo", "SAO PAULO" and
        "sao paulo / sao paulo" for the same place. Lower case, accents folded to ASCII, whitespace squeezed,
        and a repeated " / <same name>" suffix dropped. translate() rather than unaccent: no extension needed. -#}
    nullif(
        regexp_replace(
            regexp_replace(
                translate(
                    lower(trim({{ column }})),
                    'áàâãäéèêëíìîïóòôõöúùûüçñ',
                    'aaaaaeeeeiiiiooooouuuucn'
                ),
                '\s+', ' ', 'g'
            ),
            '^(.+?) / \1$', '\1'
        ),
        ''
    )
{%- endmacro %}
