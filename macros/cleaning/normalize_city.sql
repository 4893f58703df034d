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
    {#- Spark's regexp_replace replaces every match, and a backslash escapes in its string literals (so the
        pattern's is doubled). Sail's regular expressions have no backreferences: a repeated " / <same name>" is
        found by comparing the two halves around a middle " / ", which holds exactly when ^(.+?) / \1$ matches;
        transform() over a one-element array names the squeezed text once (`city`) for that comparison. -#}
    {%- set half = '(length(city) - 3) div 2' -%}
    nullif(
        transform(
            array(
                regexp_replace(
                    translate(lower(trim({{ column }})), 'áàâãäéèêëíìîïóòôõöúùûüçñ', 'aaaaaeeeeiiiiooooouuuucn'),
                    '\\s+', ' '
                )
            ),
            city -> case
                when length(city) % 2 = 1
                    and {{ half }} >= 1
                    and substr(city, {{ half }} + 1, 3) = ' / '
                    and left(city, {{ half }}) = right(city, {{ half }})
                    then left(city, {{ half }})
                else city
            end
        )[0],
        ''
    )
{%- endmacro %}
