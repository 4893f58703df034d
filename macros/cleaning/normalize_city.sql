{% macro normalize_city(column) -%}
    {#- One spelling per city: the export writes "sao paulo", "são paulo", "SAO PAULO" and
        "sao paulo / sao paulo" for the same place. Lower case, accents folded to ASCII, whitespace squeezed,
        and a repeated " / <same name>" suffix dropped. translate() rather than unaccent: no extension needed. -#}
    {{ return(adapter.dispatch('normalize_city', 'olist_dw')(column)) }}
{%- endmacro %}


{% macro default__normalize_city(column) -%}
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


{% macro spark__normalize_city(column) -%}
    {#- Spark's regexp_replace replaces every match and writes a group as $1; a backslash escapes in its string
        literals, so the pattern's are doubled. -#}
    nullif(
        regexp_replace(
            regexp_replace(
                translate(
                    lower(trim({{ column }})),
                    'áàâãäéèêëíìîïóòôõöúùûüçñ',
                    'aaaaaeeeeiiiiooooouuuucn'
                ),
                '\\s+', ' '
            ),
            '^(.+?) / \\1$', '$1'
        ),
        ''
    )
{%- endmacro %}
