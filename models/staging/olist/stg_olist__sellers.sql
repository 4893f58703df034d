{{ config(materialized='table', indexes=[{'columns': ['seller_id'], 'unique': true}]) }}

with

source as (

    select
        seller_id,
        seller_zip_code_prefix,
        seller_city,
        seller_state,
        _batch_id,
        _loaded_at,
        _raw_id
    from {{ source('olist', 'sellers') }}

),

renamed as (

    select
        seller_id,
        {{ zip_code_prefix('seller_zip_code_prefix') }} as seller_zip_code_prefix,
        {{ normalize_city('seller_city') }} as seller_city,
        upper(trim(seller_state)) as seller_state,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id
    from source

),

deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='seller_id',
        order_by='loaded_at desc, raw_id desc',
    ) }}

)

select
    seller_id,
    batch_id,
    seller_zip_code_prefix,
    seller_city,
    seller_state,
    loaded_at
from deduplicated
