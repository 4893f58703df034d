{{
    config(
        unique_key='product_id',
        indexes=[{'columns': ['product_id'], 'unique': true}],
    )
}}

with

products as (

    select
        product_id,
        product_category_name,
        product_name_length,
        product_description_length,
        product_photos_qty,
        product_weight_g,
        product_length_cm,
        product_height_cm,
        product_width_cm
    from {{ ref('stg_olist__products') }}

),

category_translations as (

    select
        product_category_name,
        product_category_name_english
    from {{ ref('stg_olist__product_category_translations') }}

)

select
    products.product_id,
    products.product_category_name,
    category_translations.product_category_name_english,
    -- What reports show: the English name, else the Portuguese one (categories missing from the translation
    -- file), else 'unknown' (products with no category).
    coalesce(
        category_translations.product_category_name_english, products.product_category_name, 'unknown'
    ) as product_category,
    products.product_name_length,
    products.product_description_length,
    products.product_photos_qty,
    products.product_weight_g,
    products.product_length_cm,
    products.product_height_cm,
    products.product_width_cm,
    products.product_category_name is not null as has_category,
    category_translations.product_category_name_english is not null as is_category_translated,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from products
left join category_translations
    on products.product_category_name = category_translations.product_category_name
