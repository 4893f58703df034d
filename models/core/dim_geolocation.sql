{{
    config(
        unique_key='zip_code_prefix',
        indexes=[{'columns': ['zip_code_prefix'], 'unique': true}],
    )
}}

with

geolocation as (

    select
        zip_code_prefix,
        city,
        state,
        latitude,
        longitude
    from {{ ref('stg_olist__geolocation') }}
    where zip_code_prefix is not null

),

-- Some points of the export lie outside Brazil (typos in sign or scale); they are left out of the centre.
points_in_brazil as (

    select
        zip_code_prefix,
        latitude,
        longitude
    from geolocation
    where
        latitude >= {{ number_var('brazil_min_latitude', -90, 90) }}
        and latitude <= {{ number_var('brazil_max_latitude', -90, 90) }}
        and longitude >= {{ number_var('brazil_min_longitude', -180, 180) }}
        and longitude <= {{ number_var('brazil_max_longitude', -180, 180) }}

),

centres as (

    select
        zip_code_prefix,
        count(*) as point_count,
        avg(latitude) as latitude,
        avg(longitude) as longitude
    from points_in_brazil
    group by zip_code_prefix

),

-- The prefix's city and state: the spelling most of its points use (ties: alphabetically first).
names as (

    select
        zip_code_prefix,
        {{ most_frequent('city') }} as city,
        {{ most_frequent('state') }} as state
    from geolocation
    group by zip_code_prefix

)

select
    names.zip_code_prefix,
    names.city,
    names.state,
    coalesce(centres.point_count, 0) as point_count,
    round(cast(centres.latitude as {{ sql_type('numeric') }}), 6) as latitude,
    round(cast(centres.longitude as {{ sql_type('numeric') }}), 6) as longitude,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from names
left join centres
    on names.zip_code_prefix = centres.zip_code_prefix
