{{ config(materialized='table', indexes=[{'columns': ['product_id'], 'unique': true}]) }}

with

source as (

    select
        product_id,
        product_category_name,
        product_name_lenght,
        product_description_lenght,
        product_photos_qty,
        product_weight_g,
        product_length_cm,
        product_height_cm,
        product_width_cm,
        _batch_id,
        _loaded_at,
        _raw_id
    from {{ source('olist', 'products') }}

),

-- The export misspells "length" as "lenght"; the columns take the right spelling here.
renamed as (

    select
        product_id,
        nullif(lower(trim(product_category_name)), '') as product_category_name,
        cast(nullif(product_name_lenght, '') as integer) as product_name_length,
        cast(nullif(product_description_lenght, '') as integer) as product_description_length,
        cast(nullif(product_photos_qty, '') as integer) as product_photos_qty,
        cast(nullif(product_weight_g, '') as integer) as product_weight_g,
        cast(nullif(product_length_cm, '') as integer) as product_length_cm,
        cast(nullif(product_height_cm, '') as integer) as product_height_cm,
        cast(nullif(product_width_cm, '') as integer) as product_width_cm,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id
    from source

),

deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='product_id',
        order_by='loaded_at desc, raw_id desc',
    ) }}

)

select
    product_id,
    batch_id,
    product_category_name,
    product_name_length,
    product_description_length,
    product_photos_qty,
    product_weight_g,
    product_length_cm,
    product_height_cm,
    product_width_cm,
    loaded_at
from deduplicated
