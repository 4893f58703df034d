{{ config(materialized='table', indexes=[{'columns': ['zip_code_prefix']}]) }}

with

source as (

    select
        geolocation_zip_code_prefix,
        geolocation_lat,
        geolocation_lng,
        geolocation_city,
        geolocation_state,
        _batch_id,
        _loaded_at,
        _raw_id
    from {{ source('olist', 'geolocation') }}

),

renamed as (

    select
        {{ zip_code_prefix('geolocation_zip_code_prefix') }} as zip_code_prefix,
        {{ normalize_city('geolocation_city') }} as city,
        upper(trim(geolocation_state)) as state,
        cast(geolocation_lat as {{ sql_type('double precision') }}) as latitude,
        cast(geolocation_lng as {{ sql_type('double precision') }}) as longitude,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id
    from source

),

-- The export has many points per zip prefix, and repeats some points exactly: one row per distinct point.
deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='zip_code_prefix, city, state, latitude, longitude',
        order_by='loaded_at desc, raw_id desc',
    ) }}

)

select
    {{ dbt_utils.generate_surrogate_key(['zip_code_prefix', 'city', 'state', 'latitude', 'longitude']) }}
        as geolocation_id,
    batch_id,
    zip_code_prefix,
    city,
    state,
    latitude,
    longitude,
    loaded_at
from deduplicated
