{{ config(materialized='table', indexes=[{'columns': ['product_category_name'], 'unique': true}]) }}

with

source as (

    select
        product_category_name,
        product_category_name_english,
        _batch_id,
        _loaded_at,
        _raw_id
    from {{ source('olist', 'product_category_name_translation') }}

),

renamed as (

    select
        nullif(lower(trim(product_category_name)), '') as product_category_name,
        nullif(lower(trim(product_category_name_english)), '') as product_category_name_english,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id
    from source

),

deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='product_category_name',
        order_by='loaded_at desc, raw_id desc',
    ) }}

)

select
    product_category_name,
    batch_id,
    product_category_name_english,
    loaded_at
from deduplicated
where product_category_name is not null
