{{
    config(
        unique_key='seller_id',
        indexes=[{'columns': ['seller_id'], 'unique': true}],
    )
}}

with

sellers as (

    select
        seller_id,
        seller_zip_code_prefix,
        seller_city,
        seller_state
    from {{ ref('stg_olist__sellers') }}

),

geolocation as (

    select
        zip_code_prefix,
        latitude,
        longitude
    from {{ ref('dim_geolocation') }}

)

select
    sellers.seller_id,
    sellers.seller_zip_code_prefix,
    sellers.seller_city,
    sellers.seller_state,
    geolocation.latitude,
    geolocation.longitude,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from sellers
left join geolocation
    on sellers.seller_zip_code_prefix = geolocation.zip_code_prefix
